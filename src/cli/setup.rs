//! What every command that touches a store shares: finding the
//! configuration, connecting to the database, reading LibreNMS's settings.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{
    self, Defaults, Layer, Mode, Settings, config_table_layer, dotenv_layer, env_layer, file_layer,
    find_dotenv, flag_layer,
};
use crate::db::{Db, Statement, Val};

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// LibreNMS's directory; its .env is read from the current directory or
    /// from here
    #[arg(long, value_name = "DIR", default_value = "/opt/librenms")]
    pub librenms_dir: PathBuf,
    /// A TOML file of settings (default: $IRONPOLL_CONFIG)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The database: mysql://USER:PASS@HOST[:PORT]/DB or sqlite:PATH
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Use the embedded store even where a LibreNMS .env exists
    #[arg(long)]
    pub standalone: bool,
    /// Override a setting (repeatable), e.g. --set rrd.step=60
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The settings, where they came from, and the database they name.
pub struct Loaded {
    pub settings: Settings,
    pub db: Db,
    /// Layers with a source worth naming in check-config.
    pub dotenv: Option<PathBuf>,
}

impl ConfigArgs {
    fn mode_and_dotenv(&self) -> (Mode, Option<PathBuf>) {
        if self.standalone {
            return (Mode::Standalone, None);
        }
        if let Some(url) = &self.db {
            let mode = if url.trim().starts_with("sqlite:") {
                Mode::Standalone
            } else {
                Mode::Librenms
            };
            let dotenv = (mode == Mode::Librenms)
                .then(|| find_dotenv(&self.librenms_dir))
                .flatten();
            return (mode, dotenv);
        }
        match find_dotenv(&self.librenms_dir) {
            Some(p) => (Mode::Librenms, Some(p)),
            None => (Mode::Standalone, None),
        }
    }

    fn base_layers(&self, dotenv: Option<&PathBuf>) -> anyhow::Result<(Vec<Layer>, Vec<Layer>)> {
        let mut low = Vec::new();
        if let Some(p) = dotenv {
            low.push(dotenv_layer(p)?);
        }
        let mut high = Vec::new();
        let file = self
            .config
            .clone()
            .or_else(|| std::env::var_os("IRONPOLL_CONFIG").map(PathBuf::from));
        if let Some(f) = file {
            high.push(file_layer(&f)?);
        }
        high.push(env_layer(std::env::vars()));
        let mut flags = flag_layer(&self.set)?;
        if let Some(url) = &self.db {
            flags.set("db.url", serde_json::Value::String(url.clone()));
        }
        high.push(flags);
        Ok((low, high))
    }

    /// Resolves the settings (reading LibreNMS's `config` table in LibreNMS
    /// mode) and connects to the database.
    pub async fn load(&self) -> anyhow::Result<Loaded> {
        let (mode, dotenv) = self.mode_and_dotenv();
        let defaults = Defaults {
            mode,
            librenms_dir: self.librenms_dir.clone(),
        };
        let (mut low, high) = self.base_layers(dotenv.as_ref())?;
        // LibreNMS's OS definitions sit just above the defaults.
        low.push(os_definitions_layer(&self.librenms_dir));
        let first: Vec<Layer> = low.iter().chain(high.iter()).cloned().collect();
        let pre = config::resolve(&first, defaults.clone())?;
        let db = Db::connect(&pre.db).await?;
        let settings = if mode == Mode::Librenms {
            let mut layers = low.clone();
            layers.push(read_config_table(&db).await?);
            if let Some(cluster) = read_poller_cluster(&db, &pre.node_id).await? {
                layers.push(cluster);
            }
            layers.extend(high);
            config::resolve(&layers, defaults)?
        } else {
            db.create_schema()
                .await
                .context("cannot create the embedded store's tables")?;
            pre
        };
        Ok(Loaded {
            settings,
            db,
            dotenv,
        })
    }
}

/// LibreNMS's OS definitions, read from its install; without one, those
/// built into ironpoll. A file that cannot be read costs its OS its
/// settings, with a warning.
fn os_definitions_layer(librenms_dir: &std::path::Path) -> Layer {
    let Some(defs) = config::os_definitions::read(librenms_dir) else {
        tracing::info!(
            "no LibreNMS OS definitions in {}: using those built into ironpoll",
            librenms_dir.join(config::os_definitions::DIR).display()
        );
        return config::os_definitions::builtin();
    };
    for (path, reason) in &defs.unreadable {
        tracing::warn!(
            "LibreNMS OS definition {} skipped: {reason}",
            path.display()
        );
    }
    tracing::debug!(
        files = defs.files,
        overrides = defs.layer.values.len(),
        "LibreNMS OS definitions read"
    );
    defs.layer
}

async fn read_config_table(db: &Db) -> anyhow::Result<Layer> {
    let rows = db
        .fetch(&Statement::new(
            "SELECT `config_name`, `config_value` FROM `config`",
        ))
        .await
        .context("cannot read LibreNMS's config table")?;
    Ok(config_table_layer(rows.into_iter().filter_map(|r| {
        Some((r.string("config_name")?, r.string("config_value")?))
    })))
}

/// This node's `poller_cluster` overrides (non-NULL columns win).
async fn read_poller_cluster(db: &Db, node_id: &str) -> anyhow::Result<Option<Layer>> {
    if node_id.is_empty() {
        return Ok(None);
    }
    let mut st = Statement::new(
        "SELECT `poller_frequency`, `poller_workers`, `poller_down_retry`, `poller_groups` FROM `poller_cluster` WHERE `node_id` = ",
    );
    st.value(db.dialect(), Val::text(node_id));
    let Ok(rows) = db.fetch(&st).await else {
        // A LibreNMS without the table (very old) has no overrides.
        return Ok(None);
    };
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut layer = Layer::new(config::Source::PollerCluster, false);
    for (column, key) in [
        ("poller_frequency", "service_poller_frequency"),
        ("poller_workers", "service_poller_workers"),
        ("poller_down_retry", "service_poller_down_retry"),
    ] {
        if let Some(v) = row.i64(column) {
            layer.set(key, serde_json::json!(v));
        }
    }
    // LibreNMS's quirk: the stored groups win once the row exists; an empty
    // or unreadable list means group 0.
    if let Some(groups) = row.string("poller_groups") {
        let parsed: Vec<i64> = groups
            .split(',')
            .filter_map(|g| g.trim().parse().ok())
            .collect();
        layer.set(
            "distributed_poller_group",
            serde_json::json!(if parsed.is_empty() { vec![0] } else { parsed }),
        );
    }
    Ok(Some(layer))
}

/// `ironpoll check-config`: the resolved settings, secrets masked.
pub async fn check_config(args: ConfigArgs) -> anyhow::Result<std::process::ExitCode> {
    let loaded = args.load().await?;
    let s = &loaded.settings;
    println!("# ironpoll configuration ({} mode)", s.mode);
    if let Some(p) = &loaded.dotenv {
        println!("# LibreNMS .env: {}", p.display());
    }
    let width = s
        .entries()
        .iter()
        .map(|(k, _, _)| k.len())
        .max()
        .unwrap_or(0);
    for (key, value, source) in s.entries() {
        println!("{key:width$} = {value}    # {source}");
    }
    println!(
        "# per-OS settings below the config table: {}",
        s.source_of("os.linux.group")
    );
    print_modules(s);
    match s.coordination() {
        crate::config::Coordination::Alone => println!(
            "# distribution: none; this node leases its devices in process (distributed_poller is off)"
        ),
        crate::config::Coordination::Dispatcher => println!(
            "# distribution: a LibreNMS dispatcher cluster through Redis (REDIS_*); service_master_timeout {} s",
            s.dispatcher.master_timeout
        ),
        crate::config::Coordination::Wrapper => println!(
            "# distribution: a poller-wrapper.py cluster through memcached at {}:{}, in steps of rrd.step ({} s); set REDIS_HOST to join a dispatcher cluster instead",
            s.memcached.host, s.memcached.port, s.rrd.step
        ),
    }
    match crate::alerting::Alerting::for_node(s, &loaded.db).await {
        Ok(_) => println!(
            "# alert rules and device groups: run by ironpoll after each committed poll (alerting.native = {}{})",
            s.alert.native,
            if s.alert.disable {
                "; alert.disable: groups only"
            } else {
                ""
            }
        ),
        Err(why) => println!("# alert rules and device groups: not run by ironpoll: {why}"),
    }
    loaded.db.close().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The enabled modules (global settings), who polls each, and whether
/// LibreNMS's PHP is there for the ones ironpoll hands to it.
fn print_modules(s: &Settings) {
    use crate::modules::{Implementation, MODULES};
    let enabled: Vec<&crate::modules::ModuleDef> = MODULES
        .iter()
        .filter(|m| {
            m.name == "core"
                || s.modules
                    .global
                    .get(m.name)
                    .copied()
                    .unwrap_or(m.default_enabled)
        })
        .collect();
    let (native, php): (Vec<_>, Vec<_>) = enabled
        .iter()
        .partition(|m| matches!(m.implementation, Implementation::Native(_)));
    let names =
        |v: &[&&crate::modules::ModuleDef]| v.iter().map(|m| m.name).collect::<Vec<_>>().join(" ");
    println!("# poller modules polled natively: {}", names(&native));
    println!(
        "# poller modules for LibreNMS's PHP: {} (and, per OS, those whose LibreNMS OS code replaces the generic polling)",
        names(&php)
    );
    for note in s.ports_not_native() {
        println!("# ports: {note}");
    }
    match crate::poller::php::Php::find(s) {
        Ok(p) => println!(
            "# LibreNMS PHP: {} ({} at once, killed after {} s)",
            p.lnms().display(),
            p.processes(),
            s.php_deadline_secs()
        ),
        Err(why) => {
            println!("# LibreNMS PHP: unavailable ({why}); the modules for it are not polled")
        }
    }
}
