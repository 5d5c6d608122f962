//! SIGHUP: the configuration read again from where it was read at start
//! (the .env, the TOML file, the environment, LibreNMS's `config` table,
//! the `--set` flags). What can change while polls run is applied at once;
//! every other key that changed is named, with the restart it needs.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::systemd::Notifier;
use crate::config::Settings;
use crate::poller::engine::Engine;

/// Reads the configuration again, as the command line that started the
/// daemon did.
pub type Reload = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Settings>> + Send + Sync>;

/// The keys whose value differs between `old` and `new`, in
/// `check-config`'s order. Secrets compare as `check-config` shows them
/// (set or not).
pub fn changed(old: &Settings, new: &Settings) -> Vec<String> {
    let before: std::collections::HashMap<String, String> =
        old.entries().into_iter().map(|(k, v, _)| (k, v)).collect();
    new.entries()
        .into_iter()
        .filter(|(k, v, _)| before.get(k) != Some(v))
        .map(|(k, _, _)| k)
        .collect()
}

/// What a reload does with the new settings: applies the keys that can
/// change while polls run (`poller.concurrency`, `log.filter`) to
/// `running`, the engine and the logger, and returns the keys that need a
/// restart.
pub fn apply(running: &mut Settings, new: &Settings, engine: &Engine) -> Vec<String> {
    let mut restart = Vec::new();
    for key in changed(running, new) {
        match key.as_str() {
            "poller.concurrency" => {
                running.poller.concurrency = new.poller.concurrency;
                engine.set_concurrency(new.poller.concurrency);
                tracing::info!(
                    concurrency = new.poller.concurrency,
                    "reload: poller.concurrency applied"
                );
            }
            "log.filter" => match crate::telemetry::set_filter(&new.log_filter) {
                Ok(()) => {
                    running.log_filter = new.log_filter.clone();
                    tracing::info!(filter = %new.log_filter, "reload: log.filter applied");
                }
                Err(e) => tracing::warn!(error = %e, "reload: log.filter not applied"),
            },
            _ => restart.push(key),
        }
    }
    restart
}

/// Reloads on every SIGHUP until `stop`.
pub async fn on_sighup(
    reload: Reload,
    mut running: Settings,
    engine: Arc<Engine>,
    notifier: Option<Arc<Notifier>>,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = hup.recv() => if r.is_none() { return },
        }
        if let Some(n) = &notifier {
            n.send(&format!(
                "RELOADING=1\nMONOTONIC_USEC={}",
                crate::telemetry::monotonic_usec()
            ));
        }
        match reload().await {
            Ok(new) => {
                let restart = apply(&mut running, &new, &engine);
                if restart.is_empty() {
                    tracing::info!("reload: configuration read again");
                } else {
                    tracing::warn!(
                        "reload: changed, and applied only after a restart: {}",
                        restart.join(", ")
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %format_args!("{e:#}"), "reload: the configuration is not changed")
            }
        }
        if let Some(n) = &notifier {
            n.send("READY=1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Defaults, Mode, flag_layer, resolve};

    fn settings(pairs: &[&str]) -> Settings {
        let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
        resolve(
            &[flag_layer(&pairs).unwrap()],
            Defaults {
                mode: Mode::Standalone,
                librenms_dir: "/nonexistent".into(),
            },
        )
        .unwrap()
    }

    #[test]
    fn the_changed_keys_are_named_and_only_those() {
        let old = settings(&["poller.concurrency=50", "rrd.step=300"]);
        let new = settings(&["poller.concurrency=80", "rrd.step=60"]);
        let mut c = changed(&old, &new);
        c.sort();
        assert_eq!(c, ["poller.concurrency", "rrd.step"]);
        assert!(changed(&old, &old).is_empty());
    }
}
