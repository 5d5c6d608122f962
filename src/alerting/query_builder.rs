//! Alert rules and device groups as LibreNMS stores them: the JSON of the
//! jQuery QueryBuilder (`builder`, `rules`), turned into SQL the way
//! LibreNMS turns it (`LibreNMS/Alerting/QueryBuilderParser.php` for alert
//! rules, `QueryBuilderFluentParser.php` for device groups). The text must
//! be LibreNMS's to the byte: an operator reads a rule's SQL in LibreNMS's
//! web UI, and a rule that matched there must match here.

use serde_json::Value;

use super::macros::Macros;
use super::relationships::{column_exists, columns, path_to_devices, primary_key};
use crate::librenms::php;

/// The SQL operator of each builder operator.
fn operator(op: &str) -> Option<&'static str> {
    Some(match op {
        "equal" => "=",
        "not_equal" => "!=",
        "less" => "<",
        "less_or_equal" => "<=",
        "greater" => ">",
        "greater_or_equal" => ">=",
        "between" => "BETWEEN",
        "not_between" => "NOT BETWEEN",
        "begins_with" | "contains" | "ends_with" => "LIKE",
        "not_begins_with" | "not_contains" | "not_ends_with" => "NOT LIKE",
        "is_empty" => "=",
        "is_not_empty" => "!=",
        "is_null" => "IS NULL",
        "is_not_null" => "IS NOT NULL",
        "regex" => "REGEXP",
        "not_regex" => "NOT REGEXP",
        "in" => "IN",
        "not_in" => "NOT IN",
        _ => return None,
    })
}

/// How the legacy SQL writes the value of an operator that shapes it.
fn value_template(op: &str) -> Option<&'static str> {
    Some(match op {
        "between" | "not_between" => "? AND ?",
        "begins_with" | "not_begins_with" => "'?%'",
        "contains" | "not_contains" => "'%?%'",
        "ends_with" | "not_ends_with" => "'%?'",
        "is_null" | "is_not_null" => "",
        "is_empty" | "is_not_empty" => "''",
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuilderError {
    #[error("unknown operator {0:?}")]
    Operator(String),
    #[error("a rule without a field")]
    Field,
}

/// A value as PHP prints it inside a string.
fn php_text(v: &Value) -> String {
    match v {
        Value::Null | Value::Bool(false) => String::new(),
        Value::Bool(true) => "1".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(_) => "Array".into(),
        Value::Object(_) => "Array".into(),
    }
}

fn php_is_numeric(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::String(s) => php::is_numeric(s),
        _ => false,
    }
}

/// A value written as a field or macro between backticks, without them.
fn passthrough(v: &Value) -> Option<&str> {
    // A lone backtick is both the start and the end, for PHP as here.
    match v {
        Value::String(s) if s.starts_with('`') && s.ends_with('`') => Some(s.trim_matches('`')),
        _ => None,
    }
}

fn is_group(rule: &Value) -> bool {
    rule.get("condition").is_some()
}

fn rules_of(group: &Value) -> &[Value] {
    group
        .get("rules")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn condition_of(group: &Value) -> String {
    group.get("condition").map(php_text).unwrap_or_default()
}

/// PHP's `array_keys(array_flip($list))`: each value once, first place.
fn unique<T: PartialEq + Clone>(list: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for v in list {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// One rule or device group's builder JSON.
pub struct QueryBuilder<'m> {
    builder: Value,
    macros: &'m Macros,
}

impl<'m> QueryBuilder<'m> {
    pub fn new(builder: Value, macros: &'m Macros) -> QueryBuilder<'m> {
        QueryBuilder { builder, macros }
    }

    /// From stored JSON text; text that is not JSON is an empty builder,
    /// as for LibreNMS.
    pub fn from_json(text: &str, macros: &'m Macros) -> QueryBuilder<'m> {
        let builder = serde_json::from_str(text).unwrap_or(Value::Null);
        QueryBuilder::new(builder, macros)
    }

    fn is_empty(&self) -> bool {
        match &self.builder {
            Value::Object(m) => m.is_empty() || !m.contains_key("condition"),
            _ => true,
        }
    }

    /// Every table the rule reads, with the tables that join them to
    /// `devices` (`getTables`).
    pub fn tables(&self) -> Vec<String> {
        tables_of(&self.builder, self.macros)
    }

    /// The rule as SQL (`toSql`): with `expand`, the statement LibreNMS
    /// runs with the device id as its one parameter; without, the text
    /// its web UI shows. None for an empty builder.
    pub fn to_sql(&self, expand: bool) -> Result<Option<String>, BuilderError> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut sql = String::new();
        let mut wrap = false;
        if expand {
            sql = format!(
                "SELECT * FROM {} WHERE ({}) AND ",
                self.tables().join(","),
                self.glue().join(" AND ")
            );
            wrap = condition_of(&self.builder) == "OR" && rules_of(&self.builder).len() > 1;
        }
        sql.push_str(&self.group_sql(&self.builder, expand, wrap)?);
        Ok(Some(sql))
    }

    fn group_sql(&self, group: &Value, expand: bool, wrap: bool) -> Result<String, BuilderError> {
        let parts = rules_of(group)
            .iter()
            .map(|r| {
                if is_group(r) {
                    self.group_sql(r, expand, true)
                } else {
                    self.rule_sql(r, expand)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sql = parts.join(&format!(" {} ", condition_of(group)));
        Ok(if wrap { format!("({sql})") } else { sql })
    }

    fn rule_sql(&self, rule: &Value, expand: bool) -> Result<String, BuilderError> {
        let mut field = rule.get("field").map(php_text).ok_or(BuilderError::Field)?;
        let builder_op = rule.get("operator").map(php_text).unwrap_or_default();
        let op = operator(&builder_op).ok_or_else(|| BuilderError::Operator(builder_op.clone()))?;
        let value = rule.get("value").cloned().unwrap_or(Value::Null);
        let value = if let Some(raw) = passthrough(&value) {
            if expand {
                self.macros.expand(raw)
            } else {
                raw.to_string()
            }
        } else if let Some(template) = value_template(&builder_op) {
            let mut values: Vec<String> = match &value {
                Value::Null => Vec::new(),
                Value::Array(a) => a.iter().map(php_text).collect(),
                v => vec![php_text(v)],
            };
            values.reverse();
            template
                .chars()
                .map(|c| match c {
                    '?' => values.pop().unwrap_or_default(),
                    c => c.to_string(),
                })
                .collect()
        } else if !php_is_numeric(&value) {
            format!("\"{}\"", php_text(&value))
        } else {
            php_text(&value)
        };
        if expand {
            field = self.macros.expand(&field);
        }
        Ok(format!("{field} {op} {value}").trim().to_string())
    }

    /// The conditions that join the rule's tables to the device
    /// (`generateGlue`), the device's own id first.
    fn glue(&self) -> Vec<String> {
        let mut glue = vec![format!(
            "devices.{} = ?",
            primary_key("devices").unwrap_or("device_id")
        )];
        for table in self.tables() {
            if let Some(path) = path_to_devices(&table) {
                for pair in path.windows(2) {
                    glue.push(join_condition(pair[0], pair[1]));
                }
            }
        }
        unique(glue)
    }

    /// The device group's query as Laravel builds it (`toQuery`): the SQL
    /// text with `?` placeholders, and the values bound to them.
    pub fn to_query(&self) -> Result<Option<Query>, BuilderError> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut sql = String::from("select * from `devices`");
        for (table, left, right) in self.joins() {
            sql.push_str(&format!(
                " left join {} on {} = {}",
                wrap_identifier(&table),
                wrap_identifier(&left),
                wrap_identifier(&right)
            ));
        }
        let mut bindings = Vec::new();
        let root_condition = condition_of(&self.builder);
        let wheres = self.group_query(&self.builder, &root_condition, &mut bindings)?;
        if let Some(clause) = &wheres {
            sql.push_str(" where ");
            sql.push_str(&clause.text);
        }
        Ok(Some(Query {
            sql,
            bindings,
            has_where: wheres.is_some(),
        }))
    }

    /// `generateJoins`: each glue condition between two tables as a left
    /// join of the table that is not `devices`.
    fn joins(&self) -> Vec<(String, String, String)> {
        self.glue()
            .into_iter()
            .filter_map(|g| {
                let (left, right) = g.split_once(" = ")?;
                if !right.contains('.') {
                    return None;
                }
                let left_table = left.split('.').next().unwrap_or_default();
                let right_table = right.split('.').next().unwrap_or_default();
                let target = if right_table != "devices" {
                    right_table
                } else {
                    left_table
                };
                Some((target.to_string(), left.to_string(), right.to_string()))
            })
            .collect()
    }

    /// A group as a nested Laravel `where`; None when it holds no
    /// condition (Laravel drops an empty nested where).
    fn group_query(
        &self,
        group: &Value,
        boolean: &str,
        bindings: &mut Vec<Value>,
    ) -> Result<Option<Clause>, BuilderError> {
        let condition = condition_of(group);
        let mut inner: Vec<Clause> = Vec::new();
        for rule in rules_of(group) {
            let clause = if is_group(rule) {
                self.group_query(rule, &condition, bindings)?
            } else {
                self.rule_query(rule, &condition, bindings)?
            };
            inner.extend(clause);
        }
        if inner.is_empty() {
            return Ok(None);
        }
        Ok(Some(Clause {
            boolean: boolean.to_string(),
            text: format!("({})", join_clauses(&inner)),
        }))
    }

    fn rule_query(
        &self,
        rule: &Value,
        condition: &str,
        bindings: &mut Vec<Value>,
    ) -> Result<Option<Clause>, BuilderError> {
        let raw_field = rule.get("field").map(php_text).ok_or(BuilderError::Field)?;
        let column = if raw_field.starts_with("macros.") {
            self.macros.expand(&raw_field)
        } else {
            wrap_identifier(&raw_field)
        };
        let op = rule.get("operator").map(php_text).unwrap_or_default();
        let value = rule.get("value").cloned().unwrap_or(Value::Null);
        let raw_value = passthrough(&value).map(|v| self.macros.expand(v));
        let clause = |boolean: &str, text: String| {
            Some(Clause {
                boolean: boolean.to_string(),
                text,
            })
        };
        // Laravel's where(): a raw value is written in, anything else bound;
        // a null value becomes IS NULL, or IS NOT NULL for any operator
        // but "=".
        let mut compare = |sql_op: &str, boolean: &str, bound: Value| {
            if let Some(raw) = &raw_value {
                return clause(boolean, format!("{column} {sql_op} {raw}"));
            }
            if bound.is_null() {
                let not = if sql_op == "=" { "" } else { "not " };
                return clause(boolean, format!("{column} is {not}null"));
            }
            bindings.push(bound);
            clause(boolean, format!("{column} {sql_op} ?"))
        };
        let sql_op = operator(&op).ok_or_else(|| BuilderError::Operator(op.clone()))?;
        let text = || match &value {
            Value::Null => String::new(),
            v => php_text(v),
        };
        Ok(match op.as_str() {
            "equal" | "not_equal" | "less" | "less_or_equal" | "greater" | "greater_or_equal"
            | "regex" | "not_regex" => compare(sql_op, condition, value.clone()),
            "contains" | "not_contains" => {
                compare(sql_op, condition, Value::String(format!("%{}%", text())))
            }
            "begins_with" | "not_begins_with" => {
                compare(sql_op, condition, Value::String(format!("{}%", text())))
            }
            "ends_with" | "not_ends_with" => {
                compare(sql_op, condition, Value::String(format!("%{}", text())))
            }
            // LibreNMS passes no boolean here: Laravel's default, "and".
            "is_empty" | "is_not_empty" => compare(sql_op, "and", Value::String(String::new())),
            "is_null" | "is_not_null" => {
                let not = if op == "is_not_null" { "not " } else { "" };
                clause(condition, format!("{column} is {not}null"))
            }
            "between" | "not_between" => {
                let values: Vec<Value> = match &value {
                    Value::Array(a) => a.iter().take(2).cloned().collect(),
                    v => vec![v.clone()],
                };
                let not = if op == "not_between" { "not " } else { "" };
                bindings.extend(values);
                clause(condition, format!("{column} {not}between ? and ?"))
            }
            _ => {
                // in / not_in: values split at commas and spaces.
                let values: Vec<Value> = text()
                    .split([',', ' '])
                    .map(|v| Value::String(v.to_string()))
                    .collect();
                let not = if op == "not_in" { "not " } else { "" };
                let marks = vec!["?"; values.len()].join(", ");
                bindings.extend(values);
                clause(condition, format!("{column} {not}in ({marks})"))
            }
        })
    }
}

/// The tables of a group and the tables joining them to `devices`
/// (`findTablesRecursive`).
fn tables_of(group: &Value, macros: &Macros) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for rule in rules_of(group) {
        if rule.get("rules").is_some() {
            let mut nested = tables_of(rule, macros);
            nested.append(&mut tables);
            tables = nested;
        } else {
            let field = rule.get("field").map(php_text).unwrap_or_default();
            if let Some((table, _)) = field.split_once('.') {
                if table == "macros" {
                    let mut found = macros.tables(&field);
                    found.append(&mut tables);
                    tables = found;
                } else {
                    tables.push(table.to_string());
                }
            }
        }
    }
    for table in unique(tables.clone()) {
        if let Some(path) = path_to_devices(&table) {
            let mut joined: Vec<String> = path.iter().map(|t| t.to_string()).collect();
            joined.append(&mut tables);
            tables = joined;
        }
    }
    unique(tables)
}

/// The condition joining two tables (`getGlue`): their one shared
/// `*_id` column, else the parent's primary key, or a column named after
/// the parent, in the child.
fn join_condition(parent: &str, child: &str) -> String {
    let child_columns = columns(child);
    let shared: Vec<&str> = columns(parent)
        .iter()
        .filter(|c| child_columns.contains(c) && c.ends_with("_id"))
        .copied()
        .collect();
    if let [key] = shared.as_slice() {
        return format!("{parent}.{key} = {child}.{key}");
    }
    let (mut parent, mut child) = (parent, child);
    let mut parent_key = primary_key(parent);
    let flipped = parent_key.is_none_or(str::is_empty);
    if flipped {
        std::mem::swap(&mut parent, &mut child);
        parent_key = primary_key(parent);
    }
    let parent_key = parent_key.unwrap_or_default();
    let mut child_key = parent_key.to_string();
    if !column_exists(child, &child_key) {
        child_key = if let Some(stem) = parent.strip_suffix("xes") {
            format!("{stem}x_id")
        } else if let Some(stem) = parent.strip_suffix('s') {
            format!("{stem}_id")
        } else {
            parent.to_string()
        };
        if !column_exists(child, &child_key) {
            child_key = primary_key(child).unwrap_or_default().to_string();
            tracing::warn!(
                "alert rule joins: guessing the join from {child}.{child_key} to {parent}.{parent_key}"
            );
        }
    }
    if flipped {
        format!("{child}.{child_key} = {parent}.{parent_key}")
    } else {
        format!("{parent}.{parent_key} = {child}.{child_key}")
    }
}

/// Laravel's MySQL quoting of a column: each dotted part in backticks.
fn wrap_identifier(name: &str) -> String {
    name.split('.')
        .map(|part| {
            if part == "*" {
                part.to_string()
            } else {
                format!("`{}`", part.replace('`', "``"))
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// One condition of a where clause and the boolean that joins it to the
/// one before.
struct Clause {
    boolean: String,
    text: String,
}

/// Laravel drops the first condition's boolean.
fn join_clauses(clauses: &[Clause]) -> String {
    let mut out = String::new();
    for (i, c) in clauses.iter().enumerate() {
        if i > 0 {
            out.push(' ');
            out.push_str(&c.boolean);
            out.push(' ');
        }
        out.push_str(&c.text);
    }
    out
}

/// SQL with `?` placeholders and the values to bind.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub sql: String,
    pub bindings: Vec<Value>,
    has_where: bool,
}

impl Query {
    /// Which of `n` devices (bound after the query's own values) are in
    /// the query's result: Laravel's `->where('devices.device_id', $id)
    /// ->exists()` for each of them, in one statement.
    pub fn devices_among(&self, n: usize) -> String {
        let anchor = format!("`devices`.`device_id` in ({})", vec!["?"; n].join(", "));
        let sql = if self.has_where {
            format!("{} and {anchor}", self.sql)
        } else {
            format!("{} where {anchor}", self.sql)
        };
        sql.replacen(
            "select * from ",
            "select distinct `devices`.`device_id` from ",
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z._`%?' ]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("devices.hostname"),
                Just("ports.ifName"),
                Just("macros.device_up"),
                Just("nosuch.table"),
                Just("`macros.past_5m`"),
                Just("equal"),
                Just("between"),
                Just("in"),
                Just("is_null"),
                Just("AND"),
                Just("OR"),
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("condition"),
                            Just("rules"),
                            Just("field"),
                            Just("operator"),
                            Just("value"),
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        /// A stored builder of any shape gives SQL or an error, never a
        /// panic (a hostile or corrupt alert_rules row costs its rule).
        #[test]
        fn any_builder_gives_sql_or_an_error(builder in json()) {
            let macros = Macros::builtin();
            let qb = QueryBuilder::new(builder, &macros);
            let _ = qb.to_sql(false);
            let _ = qb.to_sql(true);
            if let Ok(Some(q)) = qb.to_query() {
                let _ = q.devices_among(3);
            }
        }
    }

    #[test]
    fn odd_values_are_written_as_php_writes_them() {
        let macros = Macros::builtin();
        let rule = |op: &str, value: Value| {
            let b = serde_json::json!({"condition": "AND", "rules": [
                {"field": "devices.hostname", "operator": op, "value": value}]});
            QueryBuilder::new(b, &macros)
                .to_sql(false)
                .unwrap()
                .unwrap()
        };
        assert_eq!(rule("equal", Value::Null), "devices.hostname = \"\"");
        assert_eq!(rule("equal", serde_json::json!(5)), "devices.hostname = 5");
        assert_eq!(
            rule("between", serde_json::json!(["1"])),
            "devices.hostname BETWEEN 1 AND"
        );
        assert_eq!(
            rule("in", serde_json::json!("a,b")),
            "devices.hostname IN \"a,b\""
        );
        let b = serde_json::json!({"condition": "AND", "rules": [
            {"field": "devices.hostname", "operator": "in", "value": "a, b"}]});
        let q = QueryBuilder::new(b, &macros).to_query().unwrap().unwrap();
        assert_eq!(
            q.sql,
            "select * from `devices` where (`devices`.`hostname` in (?, ?, ?))"
        );
        assert_eq!(q.bindings, ["a", "", "b"]);
    }
}
