//! The resolved configuration and where each value came from.
//!
//! Layers, later ones winning: ironpoll's defaults (LibreNMS's defaults),
//! LibreNMS's `.env` (database, Redis, node id), LibreNMS's OS definitions
//! (per-OS module defaults, LibreNMS mode only), LibreNMS's `config` table
//! and this node's `poller_cluster` row (LibreNMS mode only), an optional
//! TOML file, `IRONPOLL_*` environment variables, and command-line flags.
//! Every value keeps its source so that `ironpoll check-config` can show it
//! and a bad value is reported with its name and where it was set.

pub mod dotenv;
pub mod os_definitions;
mod settings;

use std::fmt;
use std::path::{Path, PathBuf};

pub use settings::mask_url as mask_db_url;
pub use settings::{
    AlertSettings, AvailabilitySettings, Coordination, DbSettings, Defaults, DispatcherSettings,
    MemcachedSettings, ModuleSettings, NativeAlerting, OsSettings, PhpSettings, PingSettings,
    PollerSettings, PortFilters, PortSettings, RedisSettings, RrdSettings, Settings, SnmpSettings,
    TaskSettings,
};

/// Where a configuration value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    Dotenv(PathBuf),
    /// LibreNMS's OS definitions directory.
    OsDefinitions(PathBuf),
    /// The OS definitions built into ironpoll.
    BuiltinOsDefinitions,
    ConfigTable,
    PollerCluster,
    File(PathBuf),
    Env(String),
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Dotenv(p) => write!(f, "{}", p.display()),
            Source::OsDefinitions(p) => write!(f, "LibreNMS OS definitions in {}", p.display()),
            Source::BuiltinOsDefinitions => {
                f.write_str("LibreNMS OS definitions built into ironpoll")
            }
            Source::ConfigTable => f.write_str("LibreNMS config table"),
            Source::PollerCluster => f.write_str("poller_cluster row of this node"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(name) => write!(f, "environment {name}"),
            Source::Flag => f.write_str("command line"),
        }
    }
}

/// Which store and RRD back end ironpoll works against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A LibreNMS install: its MariaDB, its rrdcached or RRD directory.
    Librenms,
    /// No LibreNMS: an embedded SQLite store and local RRD files.
    Standalone,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Librenms => "librenms",
            Mode::Standalone => "standalone",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key} = {shown} (from {origin}): {reason}")]
    Invalid {
        key: String,
        shown: String,
        origin: Source,
        reason: String,
    },
    #[error("unknown setting {key} (from {origin})")]
    Unknown { key: String, origin: Source },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

/// One layer of values and the source they share.
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: Source,
    pub values: Vec<(String, serde_json::Value)>,
    /// Whether keys ironpoll does not know are an error (they are in files,
    /// the environment and flags; LibreNMS's config table has hundreds).
    pub strict: bool,
}

impl Layer {
    pub fn new(source: Source, strict: bool) -> Layer {
        Layer {
            source,
            values: Vec::new(),
            strict,
        }
    }

    pub fn set(&mut self, key: impl Into<String>, value: serde_json::Value) {
        self.values.push((key.into(), value));
    }
}

/// Maps LibreNMS `.env` names to setting keys.
const DOTENV_KEYS: &[(&str, &str)] = &[
    ("DB_HOST", "db.host"),
    ("DB_PORT", "db.port"),
    ("DB_DATABASE", "db.database"),
    ("DB_USERNAME", "db.username"),
    ("DB_PASSWORD", "db.password"),
    ("DB_SOCKET", "db.socket"),
    ("DB_TIMEZONE", "db.timezone"),
    ("NODE_ID", "node_id"),
    ("REDIS_HOST", "redis.host"),
    ("REDIS_PORT", "redis.port"),
    ("REDIS_DB", "redis.db"),
    ("REDIS_USERNAME", "redis.username"),
    ("REDIS_PASSWORD", "redis.password"),
    ("REDIS_SCHEME", "redis.scheme"),
    ("REDIS_SOCKET", "redis.socket"),
    ("REDIS_SENTINEL", "redis.sentinel"),
    ("REDIS_SENTINEL_SERVICE", "redis.sentinel_service"),
    ("REDIS_SENTINEL_USERNAME", "redis.sentinel_username"),
    ("REDIS_SENTINEL_PASSWORD", "redis.sentinel_password"),
    ("REDIS_TIMEOUT", "redis.timeout"),
];

/// Reads LibreNMS's `.env` into a layer of settings.
pub fn dotenv_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let env = dotenv::parse(&text).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut layer = Layer::new(Source::Dotenv(path.to_path_buf()), false);
    for (name, key) in DOTENV_KEYS {
        if let Some(v) = env.get(*name) {
            layer.set(*key, serde_json::Value::String(v.clone()));
        }
    }
    Ok(layer)
}

/// Reads a TOML file: nested tables and dotted keys both name settings
/// (`[rrd] step = 60` is `rrd.step`).
pub fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let read_err = |reason: String| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        read_err(e.to_string().lines().next().unwrap_or("").to_string())
    })?;
    let mut layer = Layer::new(Source::File(path.to_path_buf()), true);
    flatten_toml("", &toml::Value::Table(table), &mut layer);
    Ok(layer)
}

fn flatten_toml(prefix: &str, value: &toml::Value, layer: &mut Layer) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, layer);
            }
        }
        other => {
            let json = serde_json::to_value(other).unwrap_or(serde_json::Value::Null);
            layer.set(prefix, json);
        }
    }
}

/// `IRONPOLL_<KEY>` variables: the key upper-cased with `.` written as `__`
/// and `-` as `_` (`IRONPOLL_RRD__STEP`, `IRONPOLL_RRD_DIR`,
/// `IRONPOLL_POLLER_MODULES__UCD_MIB`).
pub fn env_layer(vars: impl IntoIterator<Item = (String, String)>) -> Layer {
    let mut layer = Layer::new(Source::Env(String::new()), true);
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("IRONPOLL_") else {
            continue;
        };
        // Variables the scripts and tests use for their own purposes.
        if settings::NON_SETTING_ENV.contains(&rest) || rest.starts_with("TEST_") {
            continue;
        }
        let key = settings::key_from_env(rest);
        layer.values.push((key, serde_json::Value::String(value)));
        layer.source = Source::Env(name.clone());
    }
    layer
}

/// The defaults of a mode, LibreNMS's install directory at its usual place.
pub fn settings_defaults(mode: Mode) -> Defaults {
    Defaults {
        mode,
        librenms_dir: PathBuf::from("/opt/librenms"),
    }
}

/// Builds the settings from layers, the first being the lowest precedence.
pub fn resolve(layers: &[Layer], defaults: Defaults) -> Result<Settings, ConfigError> {
    let mut s = Settings::defaults(defaults);
    for layer in layers {
        for (key, value) in &layer.values {
            match s.apply(key, value, &layer.source) {
                Ok(()) => {}
                Err(settings::ApplyError::Unknown) if !layer.strict => {}
                Err(settings::ApplyError::Unknown) => {
                    return Err(ConfigError::Unknown {
                        key: key.clone(),
                        origin: env_source(layer, key),
                    });
                }
                Err(settings::ApplyError::Invalid(reason)) => {
                    return Err(ConfigError::Invalid {
                        key: key.clone(),
                        shown: settings::show(key, value),
                        origin: env_source(layer, key),
                        reason,
                    });
                }
            }
        }
    }
    s.check()?;
    Ok(s)
}

/// The environment layer records one variable name; name the one at fault.
fn env_source(layer: &Layer, key: &str) -> Source {
    match &layer.source {
        Source::Env(_) => Source::Env(format!("IRONPOLL_{}", settings::env_from_key(key))),
        other => other.clone(),
    }
}

/// Where to find LibreNMS's `.env`: the current directory first, then the
/// LibreNMS directory, as `lnms` finds it.
pub fn find_dotenv(librenms_dir: &Path) -> Option<PathBuf> {
    let here = PathBuf::from(".env");
    if here.is_file() {
        return Some(here);
    }
    let there = librenms_dir.join(".env");
    there.is_file().then_some(there)
}

/// Parses `key=value` from `--set`.
pub fn flag_layer(pairs: &[String]) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new(Source::Flag, true);
    for pair in pairs {
        let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
            key: pair.clone(),
            shown: String::new(),
            origin: Source::Flag,
            reason: "expected --set key=value".into(),
        })?;
        layer.set(k.trim(), serde_json::Value::String(v.to_string()));
    }
    Ok(layer)
}

/// The LibreNMS `config` table's rows as a layer: values are JSON-encoded.
pub fn config_table_layer(rows: impl IntoIterator<Item = (String, String)>) -> Layer {
    let mut layer = Layer::new(Source::ConfigTable, false);
    for (name, raw) in rows {
        let value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw));
        layer.set(name, value);
    }
    layer
}

#[cfg(test)]
mod tests;
