//! LibreNMS's human formats that end up in stored text: eventlog messages
//! quote speeds with `Number::formatSi` and reboots with
//! `Time::formatInterval`.

use super::php;

/// `Number::formatSi($value, $round, 0, $suffix)`: SI prefixes, at most
/// `round` decimals, trailing zeros dropped (`1 Gbps`, `100 Mbps`, `1.5 kB`).
pub fn format_si(value: f64, round: usize, suffix: &str) -> String {
    let neg = value < 0.0;
    let mut v = value.abs();
    let mut ext = "";
    if v >= 0.1 {
        for prefix in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v < 1000.0 {
                break;
            }
            v /= 1000.0;
            ext = prefix;
        }
    } else {
        for prefix in ["m", "u", "n", "p"] {
            if v == 0.0 || v > 0.1 {
                break;
            }
            v *= 1000.0;
            ext = prefix;
        }
    }
    if neg {
        v = -v;
    }
    // number_format rounds half away from zero; the cast back to a number
    // drops trailing zeros.
    let rounded = php::round(v, round as i32);
    let text = format!("{rounded:.round$}");
    let number = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    let number = if number == "-0" { "0".into() } else { number };
    format!("{number} {ext}{suffix}")
}

/// `Time::formatInterval($seconds)` in its long form, leading space
/// included: ` 1 day 2 hours 3 seconds`.
pub fn format_interval(seconds: i64) -> String {
    let mut left = seconds;
    let mut out = String::new();
    for (name, size) in [
        ("years", 31_536_000),
        ("days", 86_400),
        ("hours", 3_600),
        ("minutes", 60),
        ("seconds", 1),
    ] {
        if left >= size {
            let n = left / size;
            out.push_str(&format!(" {n} "));
            out.push_str(if n > 1 { name } else { &name[..name.len() - 1] });
            left -= n * size;
        }
    }
    out
}

/// `Number::calculatePercent($part, $total, $precision)`.
pub fn percent(part: f64, total: f64, precision: i32) -> f64 {
    if total <= 0.0 || part < 0.0 {
        return 0.0;
    }
    php::round(part / total * 100.0, precision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_formats_speeds_like_librenms() {
        assert_eq!(format_si(1e9, 2, "bps"), "1 Gbps");
        assert_eq!(format_si(100e6, 2, "bps"), "100 Mbps");
        assert_eq!(format_si(10e6, 2, "bps"), "10 Mbps");
        assert_eq!(format_si(1_544_000.0, 2, "bps"), "1.54 Mbps");
        assert_eq!(format_si(0.0, 2, "bps"), "0 bps");
        assert_eq!(format_si(25e9, 2, "bps"), "25 Gbps");
    }

    #[test]
    fn intervals_read_like_librenms() {
        assert_eq!(format_interval(90061), " 1 day 1 hour 1 minute 1 second");
        assert_eq!(format_interval(7200), " 2 hours");
        assert_eq!(format_interval(0), "");
    }

    #[test]
    fn percent_never_divides_by_zero() {
        assert_eq!(percent(50.0, 0.0, 3), 0.0);
        assert_eq!(percent(86_000.0, 86_400.0, 3), 99.537);
    }
}
