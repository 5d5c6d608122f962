//! LibreNMS's OS definitions: each OS's group and the settings its poller
//! reads (module defaults, port filters, SNMP knobs, uptime quirks).
//!
//! LibreNMS merges `resources/definitions/os_detection/<os>.yaml` into its
//! configuration below the `config` table, so that an OS's `poller_modules:`
//! map becomes `os.<os>.poller_modules.<module>`, its `bad_if:` list
//! `os.<os>.bad_if`, and so on (`app/ConfigRepository.php`). A node that
//! polls for LibreNMS reads the files of its install; without one, the
//! definitions built into ironpoll (`os_definitions.json`, generated from
//! LibreNMS's files of the version ironpoll follows, GPL-3.0 as LibreNMS)
//! stand in.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Layer, Source};

/// Where the definitions sit below LibreNMS's directory.
pub const DIR: &str = "resources/definitions/os_detection";

/// The keys of a definition the poller reads; the rest (detection rules,
/// discovery, texts) is not the poller's.
const KEPT: &[&str] = &[
    // Its own name: that the OS is defined at all.
    "os",
    "group",
    "icon",
    "poller_modules",
    "empty_ifdescr",
    "good_if",
    "bad_if",
    "bad_if_regexp",
    "bad_ifname_regexp",
    "bad_ifalias_regexp",
    "bad_iftype",
    "bad_ifoperstatus",
    "bad_ifXEntry",
    "ifname",
    "ifXmcbc",
    "snmp_bulk",
    "snmp",
    "oids",
    "snmp_max_oid",
    "sensor_descr",
    "bad_uptime",
    "bad_snmpEngineTime",
    "bad_hrSystemUptime",
    "bad_disk_regexp",
    "ignore_mount_string",
    "ignore_mount_regexp",
    "ignore_mount_type",
];

/// What was read: the layer, and the files that could not be (each with
/// its reason), which cost their OS its settings and nothing else.
pub struct OsDefinitions {
    pub layer: Layer,
    pub files: usize,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Reads every definition in `<librenms_dir>/resources/definitions/
/// os_detection`. None when the directory does not exist.
pub fn read(librenms_dir: &Path) -> Option<OsDefinitions> {
    let dir = librenms_dir.join(DIR);
    let entries = std::fs::read_dir(&dir).ok()?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    // Sorted, so that two files naming the same OS resolve the same way
    // on every node.
    paths.sort();
    let mut out = OsDefinitions {
        layer: Layer::new(Source::OsDefinitions(dir), false),
        files: paths.len(),
        unreadable: Vec::new(),
    };
    for path in paths {
        match definition(&path) {
            Ok((os, settings)) => {
                for (key, value) in settings {
                    out.layer.set(format!("os.{os}.{key}"), value);
                }
            }
            Err(reason) => out.unreadable.push((path, reason)),
        }
    }
    Some(out)
}

/// The definitions built into ironpoll, as a layer.
pub fn builtin() -> Layer {
    let mut layer = Layer::new(Source::BuiltinOsDefinitions, false);
    for (os, settings) in builtin_map() {
        if let Value::Object(settings) = settings {
            for (key, value) in settings {
                layer.set(format!("os.{os}.{key}"), value.clone());
            }
        }
    }
    layer
}

fn builtin_map() -> &'static serde_json::Map<String, Value> {
    static MAP: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        serde_json::from_str(include_str!("os_definitions.json"))
            .expect("the built-in OS definitions are valid JSON (a test checks them)")
    })
}

/// One file's OS name (its `os:` key, else the file name) and its kept
/// settings as `key = value` pairs (`poller_modules.<module>`,
/// `snmp.<key>`, `oids.<key>` flattened).
fn definition(path: &Path) -> Result<(String, Vec<(String, Value)>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let def: serde_yaml::Mapping = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let os = match def.get("os").and_then(|v| v.as_str()) {
        Some(os) if !os.trim().is_empty() => os.trim().to_string(),
        _ => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Ok((os, kept_settings(&def)?))
}

fn kept_settings(def: &serde_yaml::Mapping) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for key in KEPT {
        let Some(v) = def.get(*key) else {
            continue;
        };
        // The values are checked where every layer's values are: a bad one
        // is reported with the definitions as its source.
        let value = serde_json::to_value(v).map_err(|e| e.to_string())?;
        match (*key, value) {
            ("poller_modules" | "snmp" | "oids", Value::Object(map)) => {
                for (k, v) in map {
                    out.push((format!("{key}.{k}"), v));
                }
            }
            ("poller_modules" | "snmp" | "oids", other) => {
                return Err(format!("{key} is not a map: {other}"));
            }
            (_, value) => out.push((key.to_string(), value)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod sourcegen {
    use super::*;

    /// The built-in definitions are LibreNMS's, of the version the
    /// fixtures beside the project come from: regenerated from them, they
    /// are what is committed.
    #[test]
    fn builtin_definitions_are_generated_from_librenms() {
        let dir = crate::librenms_fixtures().join("definitions/os_detection");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "LibreNMS's OS definitions not found at {} ({e}); set IRONPOLL_LIBRENMS_FIXTURES",
                    dir.display()
                )
            })
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        let mut want = String::from("{\n");
        let mut first = true;
        for path in &paths {
            let (os, settings) = definition(path).unwrap();
            let map: serde_json::Map<String, Value> = settings.into_iter().collect();
            if !first {
                want.push_str(",\n");
            }
            first = false;
            want.push_str(&format!(
                "{}: {}",
                serde_json::to_string(&os).unwrap(),
                serde_json::to_string(&map).unwrap()
            ));
        }
        want.push_str("\n}\n");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/config/os_definitions.json");
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if std::env::var_os("IRONPOLL_UPDATE_OS_DEFINITIONS").is_some() {
                std::fs::write(&path, &want).unwrap();
            } else {
                panic!(
                    "{} is not what LibreNMS's OS definitions generate; run IRONPOLL_UPDATE_OS_DEFINITIONS=1 cargo test config::os_definitions",
                    path.display()
                );
            }
        }
        assert!(
            builtin_map().len() > 800,
            "{} OSes built in",
            builtin_map().len()
        );
    }
}
