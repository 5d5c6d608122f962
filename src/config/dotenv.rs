//! LibreNMS's `.env` file, read the way Laravel (phpdotenv) reads it:
//! `KEY=value` lines, `export` prefixes, `#` comments, single quotes taken
//! literally, double quotes with escapes, and `${VAR}` references to keys
//! defined above or in the environment.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct DotenvError {
    pub line: usize,
    pub reason: String,
}

/// Parses the text of an `.env` file into its keys and values.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, DotenvError> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let err = |reason: &str| DotenvError {
            line: n + 1,
            reason: reason.to_string(),
        };
        let (key, rest) = line
            .split_once('=')
            .ok_or_else(|| err("expected KEY=value"))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(err(&format!("invalid key {key:?}")));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut text = body.to_string();
            // A single-quoted value may span lines.
            while !text.contains('\'') {
                let (_, next) = lines
                    .next()
                    .ok_or_else(|| err("unterminated single quote"))?;
                text.push('\n');
                text.push_str(next);
            }
            let end = text.find('\'').unwrap_or(text.len());
            text[..end].to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut text = body.to_string();
            loop {
                if let Some(end) = closing_quote(&text) {
                    let unescaped = unescape(&text[..end]);
                    break interpolate(&unescaped, &out);
                }
                let (_, next) = lines
                    .next()
                    .ok_or_else(|| err("unterminated double quote"))?;
                text.push('\n');
                text.push_str(next);
            }
        } else {
            let value = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            interpolate(value.trim(), &out)
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push('$'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Replaces `${NAME}` with an earlier key, or the environment's value.
fn interpolate(s: &str, known: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                let value = known
                    .get(name)
                    .cloned()
                    .or_else(|| std::env::var(name).ok())
                    .unwrap_or_default();
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_librenms_env_file() {
        let text = r#"
APP_KEY=base64:abc=
# database
DB_HOST=db.example.net
DB_DATABASE=librenms
DB_USERNAME="librenms"
DB_PASSWORD='p#ss "word"'
export NODE_ID=5f2a1c # this node
REDIS_HOST=${DB_HOST}
QUOTED="line\nnext ${DB_DATABASE}"
EMPTY=
"#;
        let env = parse(text).unwrap();
        assert_eq!(env["APP_KEY"], "base64:abc=");
        assert_eq!(env["DB_HOST"], "db.example.net");
        assert_eq!(env["DB_USERNAME"], "librenms");
        assert_eq!(env["DB_PASSWORD"], "p#ss \"word\"");
        assert_eq!(env["NODE_ID"], "5f2a1c");
        assert_eq!(env["REDIS_HOST"], "db.example.net");
        assert_eq!(env["QUOTED"], "line\nnext librenms");
        assert_eq!(env["EMPTY"], "");
    }

    #[test]
    fn a_broken_line_names_its_number() {
        let e = parse("DB_HOST=x\nthis is not a setting\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("A=\"open\n").unwrap_err();
        assert!(e.reason.contains("unterminated"));
    }
}
