//! The LibreNMS tables ironpoll reads and writes, column for column as in
//! LibreNMS's schema, and their DDL for MariaDB and SQLite.
//!
//! In LibreNMS mode the tables already exist (LibreNMS's migrations made
//! them); ironpoll creates them for the embedded store, for tests and for
//! benchmarks. The definitions in `tables.rs` are generated from
//! LibreNMS's `db_schema.yaml` by `sourcegen.rs`, whose test fails when
//! they differ (`IRONPOLL_UPDATE_SCHEMA=1 cargo test db::schema`
//! regenerates them). A new table is a line in `sourcegen::TABLES_USED`.

mod catalog;
#[cfg(test)]
mod sourcegen;
mod tables;

use super::Dialect;

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// The MySQL type as LibreNMS's schema dump spells it.
    pub ty: &'static str,
    pub nullable: bool,
    pub default: Option<&'static str>,
    /// `auto_increment`, `on update CURRENT_TIMESTAMP`, `VIRTUAL GENERATED`.
    pub extra: &'static str,
}

#[derive(Debug)]
pub struct Index {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub unique: bool,
}

/// A foreign key: `column` refers to `table`.`key`.
#[derive(Debug)]
pub struct ForeignKey {
    pub column: &'static str,
    pub table: &'static str,
    pub key: &'static str,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub indexes: &'static [Index],
    pub foreign_keys: &'static [ForeignKey],
}

/// Expressions of LibreNMS's generated columns (from its migration).
fn generated_expression(table: &str, column: &str) -> Option<&'static str> {
    match (table, column) {
        ("device_stats", "ping_rtt_diff_avg_last") => Some("`ping_rtt_last` - `ping_rtt_avg`"),
        ("device_stats", "ping_rtt_diff_prev_last") => Some("`ping_rtt_last` - `ping_rtt_prev`"),
        _ => None,
    }
}

pub use catalog::CATALOG;
pub use tables::TABLES;

/// A table of LibreNMS's schema as its alert rules see it: which columns
/// it has and its primary key (the first column of it), for the joins
/// LibreNMS guesses from `<table>_id` column names.
#[derive(Debug)]
pub struct TableShape {
    pub name: &'static str,
    pub primary: Option<&'static str>,
    pub columns: &'static [&'static str],
}

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The MySQL type of a column, looked up in a map built once.
pub fn column_type(table: &str, column: &str) -> Option<&'static str> {
    type Types =
        rustc_hash::FxHashMap<&'static str, rustc_hash::FxHashMap<&'static str, &'static str>>;
    static TYPES: std::sync::OnceLock<Types> = std::sync::OnceLock::new();
    TYPES
        .get_or_init(|| {
            TABLES
                .iter()
                .map(|t| (t.name, t.columns.iter().map(|c| (c.name, c.ty)).collect()))
                .collect()
        })
        .get(table)?
        .get(column)
        .copied()
}

/// MySQL `CREATE TABLE IF NOT EXISTS` statements for every table of a
/// LibreNMS schema dump (`db_schema.yaml`): for tests and tools that need
/// the whole of LibreNMS's schema (alert rules may read any table). The
/// parsed tables live for the rest of the process.
pub fn mysql_ddl_from_yaml(yaml: &str) -> Result<Vec<String>, String> {
    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }
    fn text(v: &serde_yaml::Value) -> Option<String> {
        match v {
            serde_yaml::Value::String(s) => Some(s.clone()),
            serde_yaml::Value::Number(n) => Some(n.to_string()),
            serde_yaml::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let schema: serde_yaml::Mapping = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, t) in &schema {
        let name = leak(
            name.as_str()
                .ok_or("a table name that is not text")?
                .to_string(),
        );
        let mut columns = Vec::new();
        for c in t["Columns"].as_sequence().ok_or("no Columns")? {
            columns.push(Column {
                name: leak(text(&c["Field"]).ok_or("a column without Field")?),
                ty: leak(text(&c["Type"]).ok_or("a column without Type")?),
                nullable: c["Null"].as_bool().unwrap_or(true),
                default: c.get("Default").and_then(text).map(leak),
                extra: leak(c.get("Extra").and_then(text).unwrap_or_default()),
            });
        }
        let mut indexes = Vec::new();
        if let Some(ix) = t.get("Indexes").and_then(|i| i.as_mapping()) {
            for (_, ix) in ix {
                let cols: Vec<&'static str> = ix["Columns"]
                    .as_sequence()
                    .map(|c| c.iter().filter_map(text).map(leak).collect())
                    .unwrap_or_default();
                indexes.push(Index {
                    name: leak(text(&ix["Name"]).ok_or("an index without Name")?),
                    columns: Box::leak(cols.into_boxed_slice()),
                    unique: ix["Unique"].as_bool().unwrap_or(false),
                });
            }
        }
        let table = Table {
            name,
            columns: Box::leak(columns.into_boxed_slice()),
            indexes: Box::leak(indexes.into_boxed_slice()),
            foreign_keys: &[],
        };
        out.extend(table_ddl(&table, Dialect::Mysql));
    }
    Ok(out)
}

/// `CREATE TABLE IF NOT EXISTS` and index statements for every table.
pub fn ddl(dialect: Dialect) -> Vec<String> {
    TABLES.iter().flat_map(|t| table_ddl(t, dialect)).collect()
}

fn table_ddl(t: &Table, dialect: Dialect) -> Vec<String> {
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|col| column_ddl(t, col, dialect))
        .collect();
    let primary = t.indexes.iter().find(|i| i.name == "PRIMARY");
    let auto_pk = t.columns.iter().any(|c| c.extra == "auto_increment");
    if let Some(pk) = primary
        && !(dialect == Dialect::Sqlite && auto_pk)
    {
        lines.push(format!("PRIMARY KEY ({})", quoted(pk.columns)));
    }
    let mut out = Vec::new();
    let options = match dialect {
        Dialect::Mysql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        Dialect::Sqlite => "",
    };
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS `{}` (\n  {}\n){options}",
        t.name,
        lines.join(",\n  ")
    ));
    for ix in t.indexes.iter().filter(|i| i.name != "PRIMARY") {
        let unique = if ix.unique { "UNIQUE " } else { "" };
        out.push(match dialect {
            Dialect::Mysql => format!(
                "CREATE {unique}INDEX IF NOT EXISTS `{}` ON `{}` ({})",
                ix.name,
                t.name,
                quoted(ix.columns)
            ),
            // SQLite index names are global to the database.
            Dialect::Sqlite => format!(
                "CREATE {unique}INDEX IF NOT EXISTS `{}` ON `{}` ({})",
                ix.name,
                t.name,
                quoted(ix.columns)
            ),
        });
    }
    out
}

fn quoted(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn column_ddl(t: &Table, col: &Column, dialect: Dialect) -> String {
    if let Some(expr) = generated_expression(t.name, col.name) {
        let ty = match dialect {
            Dialect::Mysql => col.ty,
            Dialect::Sqlite => "REAL",
        };
        return format!("`{}` {ty} GENERATED ALWAYS AS ({expr}) VIRTUAL", col.name);
    }
    match dialect {
        Dialect::Mysql => {
            let mut s = format!("`{}` {}", col.name, col.ty);
            s.push_str(if col.nullable { " NULL" } else { " NOT NULL" });
            match col.default {
                Some("CURRENT_TIMESTAMP") => s.push_str(" DEFAULT CURRENT_TIMESTAMP"),
                Some(d) => s.push_str(&format!(" DEFAULT {}", sql_literal(d))),
                None if col.nullable => s.push_str(" DEFAULT NULL"),
                None => {}
            }
            match col.extra {
                "auto_increment" => s.push_str(" AUTO_INCREMENT"),
                "on update CURRENT_TIMESTAMP" => s.push_str(" ON UPDATE CURRENT_TIMESTAMP"),
                _ => {}
            }
            s
        }
        Dialect::Sqlite => {
            if col.extra == "auto_increment" {
                return format!("`{}` INTEGER PRIMARY KEY AUTOINCREMENT", col.name);
            }
            let mut s = format!("`{}` {}", col.name, sqlite_type(col.ty));
            if !col.nullable {
                s.push_str(" NOT NULL");
            }
            match col.default {
                Some("CURRENT_TIMESTAMP") => s.push_str(" DEFAULT CURRENT_TIMESTAMP"),
                Some(d) => s.push_str(&format!(" DEFAULT {}", sql_literal(d))),
                None => {}
            }
            s
        }
    }
}

fn sql_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// The SQLite storage class for a MySQL column type.
pub fn sqlite_type(mysql: &str) -> &'static str {
    let t = mysql.to_ascii_lowercase();
    if t.contains("int") {
        "INTEGER"
    } else if t.starts_with("double") || t.starts_with("float") || t.starts_with("decimal") {
        "REAL"
    } else if t.starts_with("varbinary") || t.contains("blob") {
        "BLOB"
    } else {
        "TEXT"
    }
}

/// Whether a column holds a point in time (read back as Unix seconds).
pub fn is_time(ty: &str) -> bool {
    ty == "timestamp" || ty == "datetime"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_a_primary_key_and_known_index_columns() {
        for t in TABLES {
            assert!(
                t.indexes.iter().any(|i| i.name == "PRIMARY"),
                "{} has no primary key",
                t.name
            );
            for ix in t.indexes {
                for col in ix.columns {
                    assert!(
                        t.columns.iter().any(|c| c.name == *col),
                        "{}.{} indexes unknown column {col}",
                        t.name,
                        ix.name
                    );
                }
            }
        }
    }

    #[test]
    fn ddl_renders_for_both_dialects() {
        let my = ddl(Dialect::Mysql).join(";\n");
        assert!(my.contains("`device_id` int unsigned NOT NULL AUTO_INCREMENT"));
        assert!(my.contains("`ping_rtt_diff_avg_last` double GENERATED ALWAYS AS"));
        let lite = ddl(Dialect::Sqlite).join(";\n");
        assert!(lite.contains("`port_id` INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(lite.contains("`ifInOctets` INTEGER"));
    }
}
