//! LibreNMS's number helpers (`LibreNMS/Util/Number.php`) that decide what
//! the storage, memory and sensor modules store: first numbers pulled out
//! of text, 32-bit overflow correction, and filling the missing ones of
//! total, used, free and percent.

use super::php::{self, Php};

/// `Number::cast`: a number from text as PHP 7 read a leading number;
/// an integral value stays an int.
pub fn cast(v: &Php) -> Php {
    let number = match v {
        Php::Int(_) | Php::Float(_) => v.clone(),
        Php::Null => Php::Int(0),
        Php::Str(s) => match php::numeric_value(s) {
            Some(n) => n,
            None => match leading_number(s) {
                Some(t) => php::numeric_value(t).unwrap_or(Php::Int(0)),
                None => return Php::Int(0),
            },
        },
    };
    match number {
        Php::Float(f) if f == f.trunc() && f.abs() < 9.2e18 => Php::Int(f as i64),
        other => other,
    }
}

/// `/^\s*-?\d+(\.\d+)?/`.
fn leading_number(s: &str) -> Option<&str> {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits {
        return None;
    }
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some(&t[..i])
}

/// `Number::extract`: the first number in the text (`/-?\d*\.?\d+/`), cast.
pub fn extract(v: &Php) -> Php {
    if let Php::Str(s) = v
        && !php::is_numeric(s)
        && let Some(found) = first_number(s)
    {
        return cast(&Php::Str(found.to_string()));
    }
    cast(v)
}

/// The number `extract` would find in `s`, if there is one.
pub fn first_number_of(s: &str) -> Option<&str> {
    if php::is_numeric(s) {
        return Some(s);
    }
    first_number(s)
}

/// `/-?\d*\.?\d+/`: leftmost, then longest from there.
fn first_number(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    for start in 0..b.len() {
        let mut i = start;
        if b[i] == b'-' {
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_end = i;
        // `\d*\.?\d+`: digits, optionally a dot and more digits; the last
        // digit run must be non-empty.
        if i < b.len() && b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            return Some(&s[start..i]);
        }
        if int_end > int_start {
            return Some(&s[start..int_end]);
        }
    }
    None
}

/// Why the values could not be filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// A negative value that 2^32 does not make sense of.
    UncorrectableNegative,
    /// Not enough of total, used, free and percent.
    InsufficientData,
}

/// `Number::correctIntegerOverflow`: a negative value is taken as a
/// 32-bit unsigned one read as signed.
pub fn correct_integer_overflow(v: &Php, max: Option<i64>) -> Result<Option<i64>, NumberError> {
    if v.is_null() {
        return Ok(None);
    }
    const INT_MAX: i64 = 4_294_967_296;
    let mut value = as_f64(v);
    if php::loose_cmp(v, &Php::Int(0)) == Some(std::cmp::Ordering::Less) {
        value = INT_MAX as f64 + as_f64(&cast(v));
        if max.is_some_and(|m| value > m as f64) || value > INT_MAX as f64 {
            return Err(NumberError::UncorrectableNegative);
        }
    }
    Ok(Some(value as i64))
}

/// PHP's `(int)` of a value through its float.
fn as_f64(v: &Php) -> f64 {
    match v {
        Php::Null => 0.0,
        Php::Int(i) => *i as f64,
        Php::Float(f) => *f,
        Php::Str(_) => match cast(v) {
            Php::Int(i) => i as f64,
            Php::Float(f) => f,
            _ => 0.0,
        },
    }
}

/// `Number::normalizePercent`: a percent over 100 is taken as off by a
/// power of ten.
pub fn normalize_percent(v: f64) -> f64 {
    let mut p = v;
    while p > 100.0 {
        p /= 10.0;
    }
    p
}

/// `Number::calculatePercent`.
pub fn calculate_percent(part: f64, total: f64, precision: i32) -> f64 {
    if total <= 0.0 || part < 0.0 {
        return 0.0;
    }
    php::round(part / total * 100.0, precision)
}

/// `Number::fillMissingRatio`: from at least two of total, used, free and
/// percent, all four: `[total, used, free, percent]`, each multiplied (the
/// percent excepted) and rounded to `precision`.
pub fn fill_missing_ratio(
    total: Option<f64>,
    used: Option<f64>,
    free: Option<f64>,
    percent: &Php,
    precision: i32,
    multiplier: f64,
) -> Result<[f64; 4], NumberError> {
    // PHP's own tests of the percent decide, so it is kept as PHP holds it.
    let mut pct = percent.clone();
    if pct.truthy() {
        pct = Php::Float(normalize_percent(as_f64(&pct)));
    }
    let mut total = total;
    if total.is_none() {
        total = match (used, free) {
            (Some(u), Some(f)) => Some(u + f),
            (Some(u), _) if u != 0.0 && pct.truthy() => Some(u / (as_f64(&pct) / 100.0)),
            (_, Some(f)) if f != 0.0 && pct.truthy() => Some(f / (1.0 - as_f64(&pct) / 100.0)),
            _ if pct.is_numeric() => Some(100.0),
            _ => None,
        };
    }
    let Some(total) = total else {
        return Err(NumberError::InsufficientData);
    };
    if used.is_none() && free.is_none() && !pct.is_numeric() {
        return Err(NumberError::InsufficientData);
    }
    let used_given = used.is_some();
    let used = match used {
        Some(u) => u,
        None => match free {
            Some(f) => total - f,
            None if pct.truthy() => total * (as_f64(&pct) / 100.0),
            None => 0.0,
        },
    };
    if php::loose_eq(&pct, &Php::Null) {
        pct = Php::Float(calculate_percent(used, total, precision));
    }
    let pct = as_f64(&pct);
    let free = match free {
        Some(f) => f,
        None if !used_given => total * (1.0 - pct / 100.0),
        None => total - used,
    };
    Ok([
        php::round(total * multiplier, precision),
        php::round(used * multiplier, precision),
        php::round(free * multiplier, precision),
        php::round(pct, precision),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_out_of_text_as_librenms_reads_them() {
        assert_eq!(extract(&Php::str("23.5 C")), Php::Float(23.5));
        assert_eq!(extract(&Php::str("-40dBm")), Php::Int(-40));
        assert_eq!(extract(&Php::str("fan 3: 1200 rpm")), Php::Int(3));
        assert_eq!(extract(&Php::str("none")), Php::Int(0));
        assert_eq!(extract(&Php::str("12.0")), Php::Int(12));
        assert_eq!(extract(&Php::str(".5")), Php::Float(0.5));
        assert_eq!(cast(&Php::str("17 apples")), Php::Int(17));
    }

    #[test]
    fn overflowed_counters_are_corrected() {
        assert_eq!(
            correct_integer_overflow(&Php::str("-2"), None),
            Ok(Some(4_294_967_294))
        );
        assert_eq!(
            correct_integer_overflow(&Php::str("12"), None),
            Ok(Some(12))
        );
        assert_eq!(correct_integer_overflow(&Php::Null, None), Ok(None));
        assert_eq!(
            correct_integer_overflow(&Php::str("-2"), Some(100)),
            Err(NumberError::UncorrectableNegative)
        );
    }

    #[test]
    fn missing_ratios_are_filled() {
        // used and free given.
        assert_eq!(
            fill_missing_ratio(None, Some(25.0), Some(75.0), &Php::Null, 0, 1.0),
            Ok([100.0, 25.0, 75.0, 25.0])
        );
        // total and used, in units of 4096.
        assert_eq!(
            fill_missing_ratio(Some(1000.0), Some(250.0), None, &Php::Null, 0, 4096.0),
            Ok([4_096_000.0, 1_024_000.0, 3_072_000.0, 25.0])
        );
        // percent only: total 100.
        assert_eq!(
            fill_missing_ratio(None, None, None, &Php::str("42"), 0, 1.0),
            Ok([100.0, 42.0, 58.0, 42.0])
        );
        // a percent off by ten.
        assert_eq!(
            fill_missing_ratio(Some(200.0), None, None, &Php::str("425"), 0, 1.0),
            Ok([200.0, 85.0, 115.0, 43.0])
        );
        assert_eq!(
            fill_missing_ratio(Some(100.0), None, None, &Php::Null, 0, 1.0),
            Err(NumberError::InsufficientData)
        );
    }
}
