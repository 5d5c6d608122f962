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
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{AlertSettings, Mode, NativeAlerting, Settings};
use crate::db::{Db, DbError};

/// Totals since start, for logs and the benchmark.
#[derive(Debug, Default)]
pub struct AlertStats {
    pub devices: AtomicU64,
    pub rules: AtomicU64,
    pub raised: AtomicU64,
    pub recovered: AtomicU64,
    pub failed_rules: AtomicU64,
    pub group_changes: AtomicU64,
    pub errors: AtomicU64,
}

/// What LibreNMS does when a device poll ends (its `DevicePolled`
/// listeners, in their order): the alert rules, then the device groups.
pub struct Alerting {
    db: Db,
    settings: AlertSettings,
    macros: Macros,
    pub stats: AlertStats,
}

/// What one device's post-poll pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AfterPoll {
    /// None when `alert.disable` is set.
    pub alerts: Option<rules::DeviceAlerts>,
    pub groups: groups::GroupChanges,
}

impl Alerting {
    /// The alerting of this node, or why there is none.
    pub fn for_node(settings: &Settings, db: &Db) -> Result<Arc<Alerting>, &'static str> {
        if settings.alert.native == NativeAlerting::Off {
            return Err("alerting.native is off");
        }
        if settings.mode != Mode::Librenms {
            return Err("the embedded store has no alert rules");
        }
        let mut macros = match macros::Macros::read(&settings.librenms_dir) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(
                    "LibreNMS's alert macros in {} are unreadable ({e}): using the built-in ones",
                    settings.librenms_dir.join(macros::FILE).display()
                );
                Macros::builtin()
            }
            None => Macros::builtin(),
        };
        for (name, sql) in &settings.alert.macros {
            macros.set(name.clone(), sql.clone());
        }
        Ok(Arc::new(Alerting {
            db: db.clone(),
            settings: settings.alert.clone(),
            macros,
            stats: AlertStats::default(),
        }))
    }

    /// Whether ironpoll runs the post-poll work of a device whose poll
    /// handed modules to LibreNMS's PHP (`php_ran`: that PHP poll ended
    /// well, so LibreNMS ran its own).
    pub fn wanted(&self, php_ran: bool) -> bool {
        match self.settings.native {
            NativeAlerting::On => true,
            NativeAlerting::Auto => !php_ran,
            NativeAlerting::Off => false,
        }
    }

    /// The rules, then the groups, for one device whose rows are committed.
    pub async fn after_poll(&self, device_id: u32) -> Result<AfterPoll, DbError> {
        let mut out = AfterPoll::default();
        let result = async {
            if !self.settings.disable {
                let a = rules::run_for_device(&self.db, &self.settings, &self.macros, device_id)
                    .await?;
                self.stats
                    .rules
                    .fetch_add(u64::from(a.rules), Ordering::Relaxed);
                self.stats
                    .raised
                    .fetch_add(u64::from(a.raised), Ordering::Relaxed);
                self.stats
                    .recovered
                    .fetch_add(u64::from(a.recovered), Ordering::Relaxed);
                self.stats
                    .failed_rules
                    .fetch_add(u64::from(a.failed), Ordering::Relaxed);
                out.alerts = Some(a);
            }
            out.groups = groups::update_for_device(&self.db, &self.macros, device_id).await?;
            let changed = out.groups.attached.len() + out.groups.detached.len();
            self.stats
                .group_changes
                .fetch_add(changed as u64, Ordering::Relaxed);
            Ok::<_, DbError>(())
        }
        .await;
        self.stats.devices.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = result {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        Ok(out)
    }

    /// Only the alert rules (fast ping's status change).
    pub async fn rules_only(&self, device_id: u32) -> Result<rules::DeviceAlerts, DbError> {
        rules::run_for_device(&self.db, &self.settings, &self.macros, device_id).await
    }
}
