//! Client-side binding, as PHP's PDO does it for MySQL by default
//! ("emulated prepares"): each `?` outside quotes and comments replaced by
//! the quoted value, and the statement sent as text.
//!
//! For SQL that ironpoll runs once and never again in the same shape
//! (LibreNMS's alert rules and device groups, hundreds of distinct texts):
//! preparing each on the server costs a round trip and, past the
//! connection's statement cache, an eviction each time.

use super::Val;

/// A value as a MySQL literal (`mysql_real_escape_string` for text).
fn literal(v: &Val) -> String {
    match v {
        Val::Null => "NULL".into(),
        Val::Now => "NOW()".into(),
        Val::Int(i) => i.to_string(),
        Val::UInt(u) => u.to_string(),
        Val::Float(f) if f.is_finite() => format!("{f:?}"),
        Val::Float(_) => "NULL".into(),
        Val::Text(s) => quote(s.as_bytes()),
        Val::Bytes(b) => format!(
            "X'{}'",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    }
}

fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            '\\' | '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `sql` with its placeholders replaced by `args`, in order; an error when
/// their numbers differ (PDO's "Invalid parameter number").
pub fn bind(sql: &str, args: &[Val]) -> Result<String, String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + args.len() * 8);
    let mut next = args.iter();
    let mut placeholders = 0;
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                // To the closing quote: a backslash escapes (not in
                // backticks), a doubled quote is one.
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q != b'`' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'#' => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p)
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2)
            }
            b'?' => {
                placeholders += 1;
                out.push_str(&sql[copied..i]);
                match next.next() {
                    Some(v) => out.push_str(&literal(v)),
                    None => {
                        return Err(format!(
                            "{placeholders} placeholders, {} values",
                            args.len()
                        ));
                    }
                }
                i += 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    if placeholders != args.len() {
        return Err(format!(
            "{placeholders} placeholders, {} values",
            args.len()
        ));
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_quotes_and_comments_are_text() {
        let sql = r#"SELECT * FROM t WHERE a = ? AND b REGEXP "x?y" AND c = 'it''s ?' AND `d?` = ? -- ?
 # ?
 /* ? */ AND e LIKE 'a\'?'"#;
        let out = bind(sql, &[Val::Int(7), Val::text("o'k\\")]).unwrap();
        assert!(out.starts_with(r#"SELECT * FROM t WHERE a = 7 AND b REGEXP "x?y" AND c = 'it''s ?' AND `d?` = 'o\'k\\' -- ?"#), "{out}");
        assert!(out.ends_with(r#"/* ? */ AND e LIKE 'a\'?'"#), "{out}");
        assert!(bind("SELECT ?", &[]).is_err());
        assert!(bind("SELECT 1", &[Val::Int(1)]).is_err());
        assert_eq!(
            bind("SELECT ?, ?", &[Val::Null, Val::Float(1.5)]).unwrap(),
            "SELECT NULL, 1.5"
        );
    }
}
