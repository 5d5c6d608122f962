//! The values that travel to and from the database, and the one place
//! where PHP's values become column values: LibreNMS's PHP hands the
//! database strings, ints and floats, and MySQL (non-strict, as LibreNMS
//! runs it) converts them to the column's type. [`coerce`] does that
//! conversion for every module, so that a value lands as PHP's would.

use std::sync::Arc;

use super::schema;
use crate::librenms::php::{self, Php};

/// A value bound to, or read from, a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// The database clock at execution (written as SQL, not bound).
    Now,
}

impl Val {
    /// Memory this value takes, heap included (for the writer's bound).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Val>()
            + match self {
                Val::Text(s) => s.capacity(),
                Val::Bytes(b) => b.capacity(),
                _ => 0,
            }
    }

    pub fn text(s: impl Into<String>) -> Val {
        Val::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Val {
        s.map_or(Val::Null, |s| Val::Text(s.into()))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::UInt(u) => i64::try_from(*u).ok(),
            Val::Float(f) => Some(*f as i64),
            Val::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Val::Int(i) => u64::try_from(*i).ok(),
            Val::UInt(u) => Some(*u),
            Val::Float(f) if *f >= 0.0 => Some(*f as u64),
            Val::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::UInt(u) => Some(*u as f64),
            Val::Float(f) => Some(*f),
            Val::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            Val::Text(s) => Some(s),
            Val::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Val::Int(i) => Some(i.to_string()),
            Val::UInt(u) => Some(u.to_string()),
            Val::Float(f) => Some(f.to_string()),
            Val::Null | Val::Now => None,
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u64> for Val {
    fn from(v: u64) -> Val {
        Val::UInt(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Float(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(i64::from(v))
    }
}
/// A JSON value as a bind value: booleans as 0/1, whole numbers as
/// integers, arrays and objects as their JSON text.
impl From<&serde_json::Value> for Val {
    fn from(v: &serde_json::Value) -> Val {
        use serde_json::Value as Json;
        match v {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::from(*b),
            Json::Number(n) => n
                .as_i64()
                .map(Val::Int)
                .or_else(|| n.as_u64().map(Val::UInt))
                .unwrap_or_else(|| Val::Float(n.as_f64().unwrap_or(0.0))),
            Json::String(s) => Val::Text(s.clone()),
            other => Val::Text(other.to_string()),
        }
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// One result row: column names shared by all rows of a result.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub(crate) columns: Arc<[String]>,
    pub(crate) values: Vec<Val>,
}

impl Row {
    pub fn get(&self, column: &str) -> &Val {
        static NULL: Val = Val::Null;
        self.columns
            .iter()
            .position(|c| c == column)
            .map_or(&NULL, |i| &self.values[i])
    }

    pub fn take(&mut self, column: &str) -> Val {
        match self.columns.iter().position(|c| c == column) {
            Some(i) => std::mem::replace(&mut self.values[i], Val::Null),
            None => Val::Null,
        }
    }

    pub fn i64(&self, column: &str) -> Option<i64> {
        self.get(column).as_i64()
    }

    pub fn u64(&self, column: &str) -> Option<u64> {
        self.get(column).as_u64()
    }

    pub fn f64(&self, column: &str) -> Option<f64> {
        self.get(column).as_f64()
    }

    pub fn string(&self, column: &str) -> Option<String> {
        self.get(column).clone().into_string()
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn values(&self) -> &[Val] {
        &self.values
    }
}

/// A database value as PHP's PDO hands it over: integers as int (those
/// beyond PHP's range as strings), text as strings.
pub fn php_of(v: &Val) -> Php {
    match v {
        Val::Null | Val::Now => Php::Null,
        Val::Int(i) => Php::Int(*i),
        Val::UInt(u) => i64::try_from(*u).map_or_else(|_| Php::Str(u.to_string()), Php::Int),
        Val::Float(f) => Php::Float(*f),
        Val::Text(s) => Php::Str(s.clone()),
        Val::Bytes(b) => Php::Str(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A PHP value as the database column takes it: numbers for numeric
/// columns (rates rounded as MySQL rounds them), text cut to the column.
pub fn coerce(table: &str, column: &str, v: &Php) -> Val {
    let ty = schema::column_type(table, column).unwrap_or("");
    let numeric = ty.contains("int") || ty.starts_with("double") || ty.starts_with("decimal");
    match v {
        Php::Null => Val::Null,
        Php::Int(i) => Val::Int(*i),
        Php::Float(f) if ty.contains("int") => {
            let r = php::round(*f, 0);
            if r >= 0.0 {
                Val::UInt(r as u64)
            } else {
                Val::Int(r as i64)
            }
        }
        Php::Float(f) => Val::Float(*f),
        Php::Str(s) if numeric => match php::numeric_value(s) {
            Some(Php::Int(i)) => Val::Int(i),
            Some(Php::Float(f)) if ty.contains("int") => match s.trim().parse::<u64>() {
                Ok(u) => Val::UInt(u),
                Err(_) => Val::Int(php::round(f, 0) as i64),
            },
            Some(Php::Float(f)) => Val::Float(f),
            _ => match s.trim().parse::<u64>() {
                Ok(u) => Val::UInt(u),
                Err(_) => Val::Int(php::intval(s)),
            },
        },
        Php::Str(s) => Val::Text(fit(ty, s)),
    }
}

/// Cuts text to a `varchar(n)` column, as a non-strict MySQL would.
fn fit(ty: &str, s: &str) -> String {
    let limit = ty
        .strip_prefix("varchar(")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|n| n.parse::<usize>().ok());
    match limit {
        Some(n) if s.chars().count() > n => s.chars().take(n).collect(),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fit_their_columns() {
        assert_eq!(coerce("ports", "ifMtu", &Php::str("1500")), Val::Int(1500));
        assert_eq!(
            coerce("ports", "ifInOctets_rate", &Php::Float(12.5)),
            Val::UInt(13)
        );
        assert_eq!(
            coerce("ports", "ifInOctets", &Php::str("18446744073709551615")),
            Val::UInt(u64::MAX)
        );
        assert_eq!(
            coerce("ports", "ifAlias", &Php::str("x".repeat(300))),
            Val::Text("x".repeat(255))
        );
        assert_eq!(
            coerce("ports", "ifSpeed", &Php::str("1000000000")),
            Val::Int(1_000_000_000)
        );
    }
}
