//! File and directory names as LibreNMS makes them.

/// `Rrd::safeName`: every character outside `[A-Za-z0-9,._-]` becomes `_`.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The RRD directory of a device: its hostname without IPv6 brackets,
/// made safe (`2001:db8::1` becomes `2001_db8__1`).
pub fn host_dir(hostname: &str) -> String {
    safe_name(hostname.trim_matches(['[', ']']))
}

/// An RRD file name from its name parts, joined with `-` and made safe:
/// `["port-id", "12"]` is not how ports are named, `port-id12` is one part.
pub fn rrd_file(parts: &[&str]) -> String {
    format!("{}.rrd", safe_name(&parts.join("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_like_librenms() {
        assert_eq!(host_dir("[2001:db8::1]"), "2001_db8__1");
        assert_eq!(host_dir("sw1.example.net"), "sw1.example.net");
        assert_eq!(
            rrd_file(&["availability", "86400"]),
            "availability-86400.rrd"
        );
        assert_eq!(rrd_file(&["port-id12"]), "port-id12.rrd");
        assert_eq!(
            safe_name("storage-hrstorage-/var/log"),
            "storage-hrstorage-_var_log"
        );
    }
}
