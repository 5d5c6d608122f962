//! PHP 8 value semantics that LibreNMS's poller relies on.
//!
//! The PHP ports poller decides whether a column changed with `!=`, whether a
//! counter is usable with `is_numeric`, and computes deltas with `intval`.
//! Those rules differ from Rust's in ways that show up in the database: a
//! NULL `ifSpeed` stays NULL when the device reports speed 0, because
//! `null != 0` is false in PHP. [`Php`] carries a value the way PHP would
//! hold it, and the functions below apply PHP's rules to it.

use std::cmp::Ordering;
use std::fmt;

/// A scalar as PHP holds it: values from the database keep their column's
/// type (MySQL integers arrive as `int`), values from SNMP arrive as strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Php {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
}

impl Php {
    pub fn is_null(&self) -> bool {
        matches!(self, Php::Null)
    }

    pub fn str(s: impl Into<String>) -> Php {
        Php::Str(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Php::Str(s) => Some(s),
            _ => None,
        }
    }

    /// PHP's `(bool)` cast: `null`, `0`, `0.0`, `""` and `"0"` are false.
    pub fn truthy(&self) -> bool {
        match self {
            Php::Null => false,
            Php::Int(i) => *i != 0,
            Php::Float(f) => *f != 0.0,
            Php::Str(s) => !(s.is_empty() || s == "0"),
        }
    }

    /// PHP's `(bool)` cast of a decoded JSON value (an array is true when
    /// it holds anything).
    pub fn json_truthy(v: &serde_json::Value) -> bool {
        use serde_json::Value as Json;
        match v {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Json::String(s) => Php::Str(s.clone()).truthy(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
        }
    }

    /// PHP's `empty()`: the negation of the bool cast.
    pub fn empty(&self) -> bool {
        !self.truthy()
    }

    /// PHP's `is_numeric()`.
    pub fn is_numeric(&self) -> bool {
        match self {
            Php::Null => false,
            Php::Int(_) => true,
            Php::Float(_) => true,
            Php::Str(s) => is_numeric(s),
        }
    }

    /// PHP's `intval()`.
    pub fn intval(&self) -> i64 {
        match self {
            Php::Null => 0,
            Php::Int(i) => *i,
            Php::Float(f) => float_to_int(*f),
            Php::Str(s) => intval(s),
        }
    }

    /// The value PHP prints for `"$value"`.
    pub fn to_php_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Php {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Php::Null => Ok(()),
            Php::Int(i) => write!(f, "{i}"),
            Php::Float(x) => f.write_str(&float_to_string(*x)),
            Php::Str(s) => f.write_str(s),
        }
    }
}

impl From<Option<String>> for Php {
    fn from(v: Option<String>) -> Php {
        v.map_or(Php::Null, Php::Str)
    }
}

impl From<Option<i64>> for Php {
    fn from(v: Option<i64>) -> Php {
        v.map_or(Php::Null, Php::Int)
    }
}

/// PHP's `==` (PHP 8 rules).
pub fn loose_eq(a: &Php, b: &Php) -> bool {
    use Php::*;
    match (a, b) {
        (Null, Null) => true,
        // null against a string compares "" with the string.
        (Null, Str(s)) | (Str(s), Null) => s.is_empty(),
        // null against anything else compares both as bools.
        (Null, other) | (other, Null) => !other.truthy(),
        (Int(x), Int(y)) => x == y,
        (Int(x), Float(y)) | (Float(y), Int(x)) => (*x as f64) == *y,
        (Float(x), Float(y)) => x == y,
        (Int(_) | Float(_), Str(s)) | (Str(s), Int(_) | Float(_)) => {
            let number = if let Str(_) = a { b } else { a };
            match numeric_value(s) {
                Some(n) => compare_numbers(number, &n) == Some(Ordering::Equal),
                // A non-numeric string compares with the number's string form.
                None => number.to_string() == *s,
            }
        }
        (Str(x), Str(y)) => match (numeric_value(x), numeric_value(y)) {
            (Some(nx), Some(ny)) => compare_numbers(&nx, &ny) == Some(Ordering::Equal),
            _ => x == y,
        },
    }
}

/// Whether Eloquent saves a column that held `old` and now holds `new`:
/// a NULL that becomes a value (or the reverse), or a value that differs
/// by PHP's `==` (numbers by value).
pub fn changed(old: &Php, new: &Php) -> bool {
    old.is_null() != new.is_null() || !loose_eq(old, new)
}

/// PHP 8's `<=>` on scalars (`<`, `>` and friends): numbers and numeric
/// strings by value, other strings by bytes, null as `false` against a
/// number and as `""` against a string. None for NAN.
pub fn loose_cmp(a: &Php, b: &Php) -> Option<Ordering> {
    use Php::*;
    match (a, b) {
        (Null, Null) => Some(Ordering::Equal),
        (Null, Str(s)) => Some("".cmp(s.as_str())),
        (Str(s), Null) => Some(s.as_str().cmp("")),
        (Null, other) => Some(false.cmp(&other.truthy())),
        (other, Null) => Some(other.truthy().cmp(&false)),
        (Int(_) | Float(_), Int(_) | Float(_)) => compare_numbers(a, b),
        (Int(_) | Float(_), Str(s)) => match numeric_value(s) {
            Some(n) => compare_numbers(a, &n),
            None => Some(a.to_string().as_str().cmp(s.as_str())),
        },
        (Str(s), Int(_) | Float(_)) => match numeric_value(s) {
            Some(n) => compare_numbers(&n, b),
            None => Some(s.as_str().cmp(b.to_string().as_str())),
        },
        (Str(x), Str(y)) => match (numeric_value(x), numeric_value(y)) {
            (Some(nx), Some(ny)) => compare_numbers(&nx, &ny),
            _ => Some(x.as_str().cmp(y.as_str())),
        },
    }
}

fn compare_numbers(a: &Php, b: &Php) -> Option<Ordering> {
    match (a, b) {
        (Php::Int(x), Php::Int(y)) => Some(x.cmp(y)),
        _ => as_f64(a).partial_cmp(&as_f64(b)),
    }
}

fn as_f64(v: &Php) -> f64 {
    match v {
        Php::Int(i) => *i as f64,
        Php::Float(f) => *f,
        _ => 0.0,
    }
}

/// The number a numeric string stands for: an int when it is an integer
/// that fits, else a float (as PHP converts numeric strings).
pub fn numeric_value(s: &str) -> Option<Php> {
    if !is_numeric(s) {
        return None;
    }
    let t = s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'));
    let integer = t.strip_prefix(['+', '-']).unwrap_or(t);
    if integer.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = t.parse::<i64>()
    {
        return Some(Php::Int(i));
    }
    t.parse::<f64>().ok().map(Php::Float)
}

/// PHP 8's `is_numeric()` on a string: optional surrounding whitespace, a
/// sign, digits with an optional fraction, an optional exponent.
pub fn is_numeric(s: &str) -> bool {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
    let t = s.trim_start_matches(ws).trim_end_matches(ws);
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let e = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == e {
            return false;
        }
        i = j;
    }
    i == b.len()
}

/// PHP's `intval()` on a string: a numeric string converts as a number
/// (saturating), anything else by its leading integer, or 0.
pub fn intval(s: &str) -> i64 {
    if let Some(n) = numeric_value(s) {
        return match n {
            Php::Int(i) => i,
            Php::Float(f) => float_to_int(f),
            _ => 0,
        };
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut value: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        value = match value.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(v) => v,
            None => return if neg { i64::MIN } else { i64::MAX },
        };
    }
    if neg { -value } else { value }
}

/// PHP's float to int conversion as `intval` does it for numeric strings:
/// out-of-range values saturate (PHP 8 on 64-bit).
fn float_to_int(f: f64) -> i64 {
    if f.is_nan() { 0 } else { f as i64 }
}

/// How PHP prints a float (`serialize_precision` -1: the shortest string
/// that reads back the same; integral floats print without a fraction).
pub fn float_to_string(f: f64) -> String {
    if f.is_nan() {
        return "NAN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "INF" } else { "-INF" }.into();
    }
    if f == f.trunc() && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    let s = format!("{f}");
    if f.abs() >= 1e15 && !s.contains('.') && !s.contains('e') {
        // PHP switches to exponent form for large integral floats.
        return format!("{f:e}").replace('e', "E+");
    }
    s
}

/// PHP's `version_compare()` for plain dotted versions: numeric parts
/// compare as numbers, a missing part is below any present one
/// ("11.7" < "11.7.0").
pub fn version_compare(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<String> {
        v.split(['.', '-', '_', '+'])
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let ord = match (pa.get(i), pb.get(i)) {
            (Some(x), Some(y)) => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(nx), Ok(ny)) => nx.cmp(&ny),
                _ => x.cmp(y),
            },
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// PHP's `round()` for the precision LibreNMS asks (half away from zero).
pub fn round(value: f64, precision: i32) -> f64 {
    if precision == 0 {
        // f64::round is half away from zero, as PHP's.
        return value.round();
    }
    let factor = 10f64.powi(precision);
    let scaled = value * factor;
    // PHP pre-rounds to 15 significant digits to hide representation noise.
    let pre = format!("{scaled:.15e}").parse::<f64>().unwrap_or(scaled);
    let r = if pre >= 0.0 {
        (pre + 0.5).floor()
    } else {
        (pre - 0.5).ceil()
    };
    r / factor
}

/// PHP's `trim($s, $chars)`.
pub fn trim_chars<'a>(s: &'a str, chars: &str) -> &'a str {
    s.trim_matches(|c| chars.contains(c))
}

/// PHP's default `trim()` character set: space, tab, newline, carriage
/// return, NUL and vertical tab.
pub fn trim(s: &str) -> &str {
    trim_chars(s, " \t\n\r\0\x0b")
}

/// A PHP (PCRE) pattern with its delimiters and flags, `/^ng[0-9]+$/i`,
/// compiled for Rust's regex engine. LibreNMS appends `i` to the patterns
/// it reads from its port filters; [`Regex::new_with_flags`] does the same.
#[derive(Debug, Clone)]
pub struct Regex(regex::Regex);

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        Regex::new_with_flags(pattern, "")
    }

    pub fn new_with_flags(pattern: &str, extra_flags: &str) -> Result<Regex, String> {
        let mut chars = pattern.chars();
        let open = chars.next().ok_or("empty pattern")?;
        if open.is_ascii_alphanumeric() || open == '\\' || open.is_whitespace() {
            return Err("a PHP pattern starts with a delimiter such as /".into());
        }
        let close = match open {
            '(' => ')',
            '{' => '}',
            '[' => ']',
            '<' => '>',
            c => c,
        };
        let body = &pattern[open.len_utf8()..];
        let end = body.rfind(close).ok_or("no closing delimiter")?;
        let (expr, flags) = (&body[..end], &body[end + close.len_utf8()..]);
        let mut builder = regex::RegexBuilder::new(expr);
        for f in flags.chars().chain(extra_flags.chars()) {
            match f {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                'u' | 'D' | 'U' => &mut builder,
                other => return Err(format!("flag {other} is not supported")),
            };
        }
        builder.build().map(Regex).map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or("invalid pattern")
                .to_string()
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_patterns_compile_with_delimiters_and_flags() {
        let r = Regex::new_with_flags("/^ng[0-9]+$/", "i").unwrap();
        assert!(r.is_match("NG12"));
        assert!(!r.is_match("eng1"));
        assert!(Regex::new("#^sl[0-9]#").unwrap().is_match("sl0"));
        assert!(Regex::new("^ng$").is_err());
        assert!(Regex::new("/unclosed").is_err());
    }

    fn s(v: &str) -> Php {
        Php::str(v)
    }

    #[test]
    fn loose_equality_follows_php8() {
        // null against 0 compares as bools: equal; against "0" as strings: not.
        assert!(loose_eq(&Php::Null, &Php::Int(0)));
        assert!(!loose_eq(&Php::Null, &s("0")));
        assert!(loose_eq(&Php::Null, &s("")));
        assert!(!loose_eq(&Php::Null, &s("up")));
        assert!(loose_eq(&Php::Int(1500), &s("1500")));
        assert!(loose_eq(&s("1500"), &s("1500.0")));
        assert!(!loose_eq(&Php::Int(1500), &s("1500x")));
        assert!(loose_eq(&s("up"), &s("up")));
        assert!(!loose_eq(&s("up"), &s("Up")));
        assert!(loose_eq(&Php::Int(0), &s("0")));
        assert!(!loose_eq(&Php::Int(0), &s("")));
        assert!(!loose_eq(&Php::Int(0), &s("a")));
        assert!(loose_eq(&s("1e3"), &s("1000")));
        assert!(loose_eq(&Php::Int(10_000_000), &s("10000000")));
    }

    #[test]
    fn numeric_strings_as_php_sees_them() {
        for yes in [
            "0", "12", "-3", "+4", " 5", "6 ", "1.5", ".5", "5.", "1e3", "1E-2",
        ] {
            assert!(is_numeric(yes), "{yes:?}");
        }
        for no in ["", " ", ".", "e3", "1e", "0x1A", "12abc", "1 2", "-"] {
            assert!(!is_numeric(no), "{no:?}");
        }
    }

    #[test]
    fn intval_saturates_and_reads_leading_digits() {
        assert_eq!(intval("12345"), 12345);
        assert_eq!(intval("18446744073709551615"), i64::MAX);
        assert_eq!(intval("12abc"), 12);
        assert_eq!(intval("abc"), 0);
        assert_eq!(intval("-7"), -7);
        assert_eq!(intval("1e3"), 1000);
        assert_eq!(intval(" 42 "), 42);
    }

    #[test]
    fn php_round_is_half_away_from_zero() {
        assert_eq!(round(2.5, 0), 3.0);
        assert_eq!(round(-2.5, 0), -3.0);
        assert_eq!(round(1.955, 2), 1.96);
        assert_eq!(round(99.9994999, 3), 99.999);
        assert_eq!(round(100.0 / 3.0, 3), 33.333);
    }

    #[test]
    fn floats_print_like_php() {
        assert_eq!(float_to_string(10.0), "10");
        assert_eq!(float_to_string(0.5), "0.5");
        assert_eq!(float_to_string(1.0 / 3.0), "0.3333333333333333");
    }
}
