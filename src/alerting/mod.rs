//! LibreNMS's alerting as it runs inside a device poll: the device's alert
//! rules evaluated once its rows are committed, opening, refreshing and
//! recovering its alerts, and its dynamic device groups brought up to date.
//! `alerts.php` (LibreNMS's own, on whichever node runs it) then sends the
//! notifications for what the rules wrote.
//!
//! - `query_builder`: a rule's or group's builder JSON as LibreNMS's SQL.
//! - `relationships`: how LibreNMS joins a table to `devices`.
//! - `macros`: LibreNMS's alert macros.
//! - `rules`: a device's rules and its alerts' state machine.
//! - `maintenance`: whether a maintenance schedule covers the device now.
//! - `contacts`, `details`: what an alert_log row carries.
//! - `groups`: the device's dynamic device groups.

pub mod contacts;
pub mod details;
pub mod groups;
pub mod macros;
pub mod maintenance;
pub mod query_builder;
pub mod relationships;
pub mod rules;

pub use macros::Macros;
pub use query_builder::{BuilderError, Query, QueryBuilder};

use std::sync::Arc;

use crate::config::{AlertSettings, Mode, NativeAlerting, Settings};
use crate::db::{Db, DbError, Statement};

/// What LibreNMS does when a device poll ends (its `DevicePolled`
/// listeners, in their order): the alert rules, then the device groups.
/// Devices whose rows commit while a pass runs wait for the next pass and
/// share it (a batch), so that under load each rule runs once per batch
/// rather than once per device.
pub struct Alerting {
    core: Arc<Core>,
    queue: tokio::sync::mpsc::UnboundedSender<Waiting>,
}

struct Core {
    db: Db,
    settings: AlertSettings,
    macros: Macros,
}

type Waiting = (u32, tokio::sync::oneshot::Sender<Result<AfterPoll, String>>);

/// The most devices one pass takes.
const MAX_BATCH: usize = 64;

/// What one device's post-poll pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AfterPoll {
    /// None when `alert.disable` is set.
    pub alerts: Option<rules::DeviceAlerts>,
    pub groups: groups::GroupChanges,
}

impl Alerting {
    /// The alerting of this node, or why there is none.
    pub async fn for_node(settings: &Settings, db: &Db) -> Result<Arc<Alerting>, String> {
        if settings.alert.native == NativeAlerting::Off {
            return Err("alerting.native is off".into());
        }
        if settings.mode != Mode::Librenms {
            return Err("the embedded store has no alert rules".into());
        }
        // A database without LibreNMS's alerting tables (a test or
        // benchmark schema) is said once, not at every poll.
        let probe = Statement::new(
            "SELECT (SELECT COUNT(*) FROM `alert_rules`) + (SELECT COUNT(*) FROM `alerts` WHERE 0) \
             + (SELECT COUNT(*) FROM `alert_log` WHERE 0) + (SELECT COUNT(*) FROM `device_groups`) \
             + (SELECT COUNT(*) FROM `alert_schedule` WHERE 0) AS `n`",
        );
        if let Err(e) = db.fetch(&probe).await {
            return Err(format!(
                "the database has no LibreNMS alerting tables ({e})"
            ));
        }
        let mut macros = match macros::Macros::read(&settings.librenms_dir) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(
                    error = %e, "LibreNMS's alert macros in {} are unreadable: using the built-in ones",
                    settings.librenms_dir.join(macros::FILE).display()
                );
                Macros::builtin()
            }
            None => Macros::builtin(),
        };
        for (name, sql) in &settings.alert.macros {
            macros.set(name.clone(), sql.clone());
        }
        let core = Arc::new(Core {
            db: db.clone(),
            settings: settings.alert.clone(),
            macros,
        });
        let (queue, waiting) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(run_batches(core.clone(), waiting));
        Ok(Arc::new(Alerting { core, queue }))
    }

    /// Whether ironpoll runs the post-poll work of a device whose poll
    /// handed modules to LibreNMS's PHP (`php_ran`: that PHP poll ended
    /// well, so LibreNMS ran its own).
    pub fn wanted(&self, php_ran: bool) -> bool {
        match self.core.settings.native {
            NativeAlerting::On => true,
            NativeAlerting::Auto => !php_ran,
            NativeAlerting::Off => false,
        }
    }

    /// The rules, then the groups, for one device whose rows are
    /// committed; it shares a pass with the devices waiting with it.
    pub async fn after_poll(&self, device_id: u32) -> Result<AfterPoll, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue
            .send((device_id, tx))
            .map_err(|_| "alerting stopped".to_string())?;
        rx.await.unwrap_or_else(|_| Err("alerting stopped".into()))
    }

    /// The rules and groups of a batch of devices, in one pass.
    pub async fn after_polls(&self, ids: &[u32]) -> Result<Vec<(u32, AfterPoll)>, DbError> {
        self.core.pass(ids).await
    }

    /// Only the alert rules, for devices whose status changed (fast ping).
    pub async fn rules_only(
        &self,
        ids: &[u32],
    ) -> Result<Vec<(u32, rules::DeviceAlerts)>, DbError> {
        let c = &self.core;
        rules::run_for_devices(&c.db, &c.settings, &c.macros, ids).await
    }
}

/// Takes what waits (up to a batch) whenever a pass ends.
async fn run_batches(core: Arc<Core>, mut waiting: tokio::sync::mpsc::UnboundedReceiver<Waiting>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut ids: Vec<u32> = batch.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        match core.pass(&ids).await {
            Ok(done) => {
                for (id, tx) in batch {
                    let mine = done.iter().find(|(d, _)| *d == id).map(|(_, a)| a.clone());
                    let _ = tx.send(mine.ok_or_else(|| "not in the pass".to_string()));
                }
            }
            Err(e) => {
                tracing::warn!(
                    devices = ids.len(),
                    error = %e, "alert rules and device groups not run"
                );
                for (_, tx) in batch {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        }
    }
}

impl Core {
    /// The rules (unless `alert.disable`), then the groups, of a batch;
    /// the outcome of each device in the order of `ids`.
    async fn pass(&self, ids: &[u32]) -> Result<Vec<(u32, AfterPoll)>, DbError> {
        let alerts: Vec<Option<rules::DeviceAlerts>> = if self.settings.disable {
            vec![None; ids.len()]
        } else {
            rules::run_for_devices(&self.db, &self.settings, &self.macros, ids)
                .await?
                .into_iter()
                .map(|(_, a)| Some(a))
                .collect()
        };
        let groups = groups::update_for_devices(&self.db, &self.macros, ids).await?;
        Ok(groups
            .into_iter()
            .zip(alerts)
            .map(|((id, groups), alerts)| (id, AfterPoll { alerts, groups }))
            .collect())
    }
}
