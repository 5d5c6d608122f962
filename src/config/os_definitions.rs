//! LibreNMS's OS definitions: per-OS module defaults.
//!
//! LibreNMS merges `resources/definitions/os_detection/<os>.yaml` into its
//! configuration below the `config` table, so that an OS's
//! `poller_modules:` map becomes `os.<os>.poller_modules.<module>`
//! (`app/ConfigRepository.php`). The `config` table holds only what an
//! operator changed, so a node that polls for LibreNMS reads the files too.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Layer, Source};

/// Where the definitions sit below LibreNMS's directory.
pub const DIR: &str = "resources/definitions/os_detection";

/// The two keys of a definition ironpoll reads; the rest (detection
/// rules, discovery) is not the poller's.
#[derive(Deserialize)]
struct Definition {
    os: Option<String>,
    #[serde(default)]
    poller_modules: serde_yaml::Mapping,
}

/// What was read: the layer, and the files that could not be (each with
/// its reason), which cost their OS its overrides and nothing else.
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
            Ok((os, modules)) => {
                for (module, on) in modules {
                    out.layer
                        .set(format!("os.{os}.poller_modules.{module}"), on);
                }
            }
            Err(reason) => out.unreadable.push((path, reason)),
        }
    }
    Some(out)
}

/// One file's OS name (its `os:` key, else the file name) and module
/// overrides.
fn definition(path: &Path) -> Result<(String, Vec<(String, serde_json::Value)>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let def: Definition = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let os = match def.os {
        Some(os) if !os.trim().is_empty() => os.trim().to_string(),
        _ => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let mut modules = Vec::new();
    for (k, v) in def.poller_modules {
        let Some(module) = k.as_str() else {
            return Err(format!(
                "poller_modules has a key that is not a name: {k:?}"
            ));
        };
        // The value is checked where every layer's values are: a bad one
        // is reported with this file as its source.
        let value = serde_json::to_value(&v).map_err(|e| e.to_string())?;
        modules.push((module.to_string(), value));
    }
    Ok((os, modules))
}
