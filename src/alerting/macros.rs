//! LibreNMS's alert macros (`alert.macros.rule`): names for SQL fragments
//! that rules use as `macros.<name>` fields or values. LibreNMS loads them
//! from `resources/definitions/macros.json` of its install and lets its
//! configuration add or replace them (`app/ConfigRepository.php`). Without
//! a LibreNMS install, the macros built into ironpoll (`macros.json`,
//! LibreNMS's file of the version ironpoll follows, GPL-3.0 as LibreNMS)
//! stand in.

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use rustc_hash::FxHashMap;

/// Where the macros sit below LibreNMS's directory.
pub const FILE: &str = "resources/definitions/macros.json";

/// How deep macros may refer to macros (LibreNMS's limit).
const DEPTH_LIMIT: usize = 20;

#[derive(Debug, Clone, Default)]
pub struct Macros {
    rules: FxHashMap<String, String>,
}

fn macro_name() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"%?macros.([^ =()]+)").expect("a valid pattern"))
}

fn table_prefix() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"%([^%.]+)\.").expect("a valid pattern"))
}

impl Macros {
    pub fn from_json(text: &str) -> Result<Macros, String> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut macros = Macros::default();
        for (name, value) in map {
            let value = value
                .as_str()
                .ok_or_else(|| format!("macro {name} is not text"))?;
            macros.rules.insert(name, value.to_string());
        }
        Ok(macros)
    }

    /// The macros built into ironpoll.
    pub fn builtin() -> Macros {
        Macros::from_json(include_str!("macros.json"))
            .expect("the built-in macros are valid (a test checks them)")
    }

    /// The macros of a LibreNMS install; None when it has no macro file.
    pub fn read(librenms_dir: &Path) -> Option<Result<Macros, String>> {
        let text = std::fs::read_to_string(librenms_dir.join(FILE)).ok()?;
        Some(Macros::from_json(&text))
    }

    /// Adds or replaces a macro (`alert.macros.rule.<name>` in LibreNMS's
    /// configuration).
    pub fn set(&mut self, name: impl Into<String>, sql: impl Into<String>) {
        self.rules.insert(name.into(), sql.into());
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every macro in `subject` replaced by its SQL, macros within macros
    /// too, up to LibreNMS's depth; a name that is no macro stays.
    fn substitute(&self, subject: &str) -> String {
        let mut subject = subject.to_string();
        let mut count = 0;
        while count < DEPTH_LIMIT && subject.contains("macros.") {
            count += 1;
            subject = macro_name()
                .replace_all(&subject, |c: &regex::Captures<'_>| {
                    match self.rules.get(&c[1]) {
                        Some(sql) => sql.clone(),
                        None => c[0].to_string(),
                    }
                })
                .into_owned();
        }
        subject
    }

    /// `expandMacro`: a field or value with its macros expanded, `%table.`
    /// prefixes made `table.`, wrapped in parentheses; text without a
    /// macro is returned as it is.
    pub fn expand(&self, subject: &str) -> String {
        if !subject.contains("macros.") {
            return subject.to_string();
        }
        let expanded = self.substitute(subject);
        let cleaned = table_prefix().replace_all(&expanded, "$1.").into_owned();
        if cleaned.starts_with('(') && cleaned.ends_with(')') {
            cleaned
        } else {
            format!("({cleaned})")
        }
    }

    /// The tables a macro reads (`expandMacro` with `$tables_only`).
    pub fn tables(&self, subject: &str) -> Vec<String> {
        if !subject.contains("macros.") {
            return Vec::new();
        }
        let expanded = self.substitute(subject);
        let mut tables: Vec<String> = Vec::new();
        for c in table_prefix().captures_iter(&expanded) {
            if !tables.iter().any(|t| t == &c[1]) {
                tables.push(c[1].to_string());
            }
        }
        tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_expand_within_macros() {
        let mut m = Macros::default();
        m.set("device", "(%devices.disabled = 0 && %devices.ignore = 0)");
        m.set("device_up", "%devices.status = 1 && %macros.device");
        assert_eq!(
            m.expand("macros.device_up"),
            "(devices.status = 1 && (devices.disabled = 0 && devices.ignore = 0))"
        );
        assert_eq!(m.tables("macros.device_up"), ["devices"]);
        assert_eq!(m.expand("devices.hostname"), "devices.hostname");
        // An unknown macro stays as it is (and the loop ends at the limit).
        assert_eq!(m.expand("macros.nothing"), "(macros.nothing)");
    }

    #[test]
    fn a_macro_that_refers_to_itself_ends() {
        let mut m = Macros::default();
        m.set("loop", "%macros.loop");
        assert_eq!(m.expand("macros.loop"), "(macros.loop)");
    }

    /// The built-in macros are LibreNMS's, of the version the fixtures
    /// beside the project come from.
    #[test]
    fn builtin_macros_are_librenms_macros() {
        let path = crate::librenms_fixtures().join("definitions/macros.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "LibreNMS's macros not found at {} ({e}); set IRONPOLL_LIBRENMS_FIXTURES",
                path.display()
            )
        });
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want = serde_json::to_string_pretty(&theirs).unwrap() + "\n";
        let ours =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/alerting/macros.json");
        let have = std::fs::read_to_string(&ours).unwrap_or_default();
        if have != want {
            if std::env::var_os("IRONPOLL_UPDATE_MACROS").is_some() {
                std::fs::write(&ours, &want).unwrap();
            } else {
                panic!(
                    "{} is not LibreNMS's macros; run IRONPOLL_UPDATE_MACROS=1 cargo test alerting::macros",
                    ours.display()
                );
            }
        }
        assert_eq!(Macros::builtin().len(), theirs.as_object().unwrap().len());
    }
}
