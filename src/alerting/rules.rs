//! A device's alert rules after its poll (`LibreNMS/Alert/AlertRules.php`):
//! skipped under a maintenance that skips alerts; with `disable_notify`,
//! its alerts cleared; else every enabled rule that applies to it run with
//! the device id as its parameter, and its alert opened, refreshed or
//! recovered as LibreNMS's state machine says.

use serde_json::Value;

use super::details::{self, PhpRow};
use super::{Macros, QueryBuilder, contacts, maintenance};
use crate::config::AlertSettings;
use crate::db::{Db, DbError, Statement, Val};

/// `alerts.state` (LibreNMS's `AlertState`).
pub mod state {
    pub const CLEAR: i64 = 0;
    pub const ACTIVE: i64 = 1;
    pub const ACKNOWLEDGED: i64 = 2;
    pub const WORSE: i64 = 3;
    pub const BETTER: i64 = 4;
    pub const CHANGED: i64 = 5;
    pub const RECOVERED: i64 = 0;
}

/// `Severity::Error`, for the eventlog line of a broken rule.
const SEVERITY_ERROR: i64 = 5;

/// What one device's pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceAlerts {
    /// Why no rule ran, when none did.
    pub skipped: Option<Skipped>,
    pub rules: u32,
    /// Alerts opened (a new alert_log row in state ACTIVE).
    pub raised: u32,
    /// Active alerts whose details were refreshed.
    pub refreshed: u32,
    /// Alerts recovered (a new alert_log row in state RECOVERED).
    pub recovered: u32,
    /// Acknowledged alerts left alone.
    pub acknowledged: u32,
    /// Rules whose SQL failed (each logged to the eventlog).
    pub failed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Skipped {
    /// No such device.
    Missing,
    /// Under a maintenance schedule that skips alerts.
    Maintenance,
    /// `disable_notify`: its alerts were cleared.
    NotifyDisabled,
}

/// One enabled rule that applies to the device.
struct Rule {
    id: u64,
    name: String,
    query: String,
    builder: String,
    extra: String,
}

impl Rule {
    /// `(bool) ($rule->extra['invert'] ?? false)`.
    fn invert(&self) -> bool {
        let extra: Value = serde_json::from_str(&self.extra).unwrap_or(Value::Null);
        match extra.get("invert") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => !(s.is_empty() || s == "0"),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
        }
    }

    /// The stored query, else the builder's (PHP's `?:`: "0" is empty).
    fn sql(&self, macros: &Macros) -> Option<String> {
        if !self.query.is_empty() && self.query != "0" {
            return Some(self.query.clone());
        }
        QueryBuilder::from_json(&self.builder, macros)
            .to_sql(true)
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    }
}

/// The enabled rules for a device (`AlertRule::enabled()->forDevice()`):
/// rules mapped to nothing, rules mapped to the device, one of its groups
/// or its location, and inverted maps that name none of them.
fn rules_sql(device_id: u32) -> Statement {
    let dev = Val::from(device_id);
    let on_device = "EXISTS (SELECT 1 FROM `alert_device_map` m JOIN `devices` d ON d.`device_id` = m.`device_id` \
         WHERE m.`rule_id` = r.`id` AND d.`device_id` = ?)";
    let in_group = "EXISTS (SELECT 1 FROM `alert_group_map` m JOIN `device_groups` g ON g.`id` = m.`group_id` \
         JOIN `device_group_device` gd ON gd.`device_group_id` = g.`id` \
         JOIN `devices` d ON d.`device_id` = gd.`device_id` WHERE m.`rule_id` = r.`id` AND d.`device_id` = ?)";
    let at_location = "EXISTS (SELECT 1 FROM `alert_location_map` m JOIN `locations` l ON l.`id` = m.`location_id` \
         WHERE m.`rule_id` = r.`id` AND l.`id` = (SELECT `location_id` FROM `devices` WHERE `device_id` = ?))";
    let sql = format!(
        "SELECT r.`id`, r.`name`, r.`query`, r.`builder`, r.`extra` FROM `alert_rules` r \
         WHERE r.`disabled` = 0 AND ( \
           (NOT EXISTS (SELECT 1 FROM `alert_device_map` m JOIN `devices` d ON d.`device_id` = m.`device_id` WHERE m.`rule_id` = r.`id`) \
            AND NOT EXISTS (SELECT 1 FROM `alert_group_map` m JOIN `device_groups` g ON g.`id` = m.`group_id` WHERE m.`rule_id` = r.`id`) \
            AND NOT EXISTS (SELECT 1 FROM `alert_location_map` m JOIN `locations` l ON l.`id` = m.`location_id` WHERE m.`rule_id` = r.`id`)) \
           OR (r.`invert_map` = 0 AND ({on_device} OR {in_group} OR {at_location})) \
           OR (r.`invert_map` = 1 AND NOT {on_device} AND NOT {in_group} AND NOT {at_location})) \
         ORDER BY r.`id`"
    );
    let mut st = Statement::new(sql);
    st.args = vec![dev.clone(); 6];
    st
}

/// Runs the alert rules of one device, as LibreNMS does after its poll.
pub async fn run_for_device(
    db: &Db,
    settings: &AlertSettings,
    macros: &Macros,
    device_id: u32,
) -> Result<DeviceAlerts, DbError> {
    let mut out = DeviceAlerts::default();
    let mut st =
        Statement::new("SELECT `device_id`, `disable_notify` FROM `devices` WHERE `device_id` = ?");
    st.args.push(Val::from(device_id));
    let Some(device) = db.fetch(&st).await?.into_iter().next() else {
        out.skipped = Some(Skipped::Missing);
        return Ok(out);
    };
    if maintenance::status(db, device_id).await? == maintenance::Status::SkipAlerts {
        tracing::info!(
            device = device_id,
            "under maintenance, skipping alert rules"
        );
        out.skipped = Some(Skipped::Maintenance);
        return Ok(out);
    }
    if device.i64("disable_notify").unwrap_or(0) != 0 {
        tracing::info!(
            device = device_id,
            "alerting disabled for the device: clearing its alerts"
        );
        let mut st = Statement::new(
            "UPDATE `alerts` SET `state` = ?, `alerted` = 0, `open` = 0 WHERE `device_id` = ?",
        );
        st.args = vec![Val::Int(state::CLEAR), Val::from(device_id)];
        db.execute(&st).await?;
        out.skipped = Some(Skipped::NotifyDisabled);
        return Ok(out);
    }
    let rules: Vec<Rule> = db
        .fetch(&rules_sql(device_id))
        .await?
        .into_iter()
        .map(|r| Rule {
            id: r.u64("id").unwrap_or(0),
            name: r.string("name").unwrap_or_default(),
            query: r.string("query").unwrap_or_default(),
            builder: r.string("builder").unwrap_or_default(),
            extra: r.string("extra").unwrap_or_default(),
        })
        .collect();
    // Each rule's latest alert for the device, read once for all rules.
    let mut st = Statement::new(
        "SELECT `id`, `rule_id`, `state` FROM `alerts` WHERE `device_id` = ? ORDER BY `id`",
    );
    st.args.push(Val::from(device_id));
    let mut latest: rustc_hash::FxHashMap<u64, (u64, i64)> = Default::default();
    for r in db.fetch(&st).await? {
        latest.insert(
            r.u64("rule_id").unwrap_or(0),
            (r.u64("id").unwrap_or(0), r.i64("state").unwrap_or(0)),
        );
    }
    for rule in &rules {
        out.rules += 1;
        let alert = latest.get(&rule.id).copied();
        process_rule(db, settings, macros, device_id, rule, alert, &mut out).await?;
    }
    Ok(out)
}

async fn process_rule(
    db: &Db,
    settings: &AlertSettings,
    macros: &Macros,
    device_id: u32,
    rule: &Rule,
    alert: Option<(u64, i64)>,
    out: &mut DeviceAlerts,
) -> Result<(), DbError> {
    let Some(sql) = rule.sql(macros) else {
        return Ok(());
    };
    let mut st = Statement::new(sql);
    st.args.push(Val::from(device_id));
    let rows = match db.fetch_emulated(&st).await {
        Ok(rows) => rows,
        Err(e) if e.is_unavailable() => return Err(e),
        Err(e) => {
            // A broken rule costs only itself.
            out.failed += 1;
            tracing::warn!(device = device_id, rule = rule.id, error = %e, "alert rule failed");
            log_event(
                db,
                device_id,
                &format!("Error in alert rule {} ({}): {e}", rule.name, rule.id),
            )
            .await?;
            return Ok(());
        }
    };
    // `! empty($rows) !== $invert`
    let matched = !rows.is_empty();
    let triggered = matched != rule.invert();
    if triggered {
        let rows: Vec<PhpRow> = rows.iter().map(details::php_row).collect();
        trigger(db, settings, device_id, rule, &rows, alert, out).await
    } else {
        recover(db, device_id, rule, alert, out).await
    }
}

async fn trigger(
    db: &Db,
    settings: &AlertSettings,
    device_id: u32,
    rule: &Rule,
    rows: &[PhpRow],
    alert: Option<(u64, i64)>,
    out: &mut DeviceAlerts,
) -> Result<(), DbError> {
    let current = alert.map(|(_, s)| s);
    if current == Some(state::ACKNOWLEDGED) {
        out.acknowledged += 1;
        return Ok(());
    }
    let contacts = contacts::for_rows(db, settings, rows).await;
    if matches!(
        current,
        Some(state::ACTIVE | state::WORSE | state::BETTER | state::CHANGED)
    ) {
        // No change of state: the latest alert_log row gets the rule's
        // fresh rows.
        let mut st = Statement::new(
            "SELECT `id`, `details` FROM `alert_log` WHERE `device_id` = ? AND `rule_id` = ? ORDER BY `id` DESC LIMIT 1",
        );
        st.args = vec![Val::from(device_id), Val::UInt(rule.id)];
        if let Some(log) = db.fetch(&st).await?.into_iter().next() {
            let earlier = match log.get("details") {
                Val::Bytes(b) => details::decompress(b),
                Val::Text(t) => details::decompress(t.as_bytes()),
                _ => Default::default(),
            };
            let json = details::details_json(&earlier, &contacts, rows);
            let mut st = Statement::new("UPDATE `alert_log` SET `details` = ? WHERE `id` = ?");
            st.args = vec![
                Val::Bytes(details::compress(&json)),
                Val::UInt(log.u64("id").unwrap_or(0)),
            ];
            db.execute(&st).await?;
            out.refreshed += 1;
        }
        return Ok(());
    }
    let json = details::details_json(&Default::default(), &contacts, rows);
    let mut statements = vec![alert_log(device_id, rule.id, state::ACTIVE, Some(&json))];
    statements.push(match alert {
        Some((id, _)) => {
            let mut st = Statement::new(
                "UPDATE `alerts` SET `state` = ?, `open` = 1, `alerted` = 0, `timestamp` = NOW() WHERE `id` = ?",
            );
            st.args = vec![Val::Int(state::ACTIVE), Val::UInt(id)];
            st
        }
        None => new_alert(device_id, rule.id, state::ACTIVE),
    });
    db.transaction(&statements).await?;
    out.raised += 1;
    tracing::info!(device = device_id, rule = rule.id, name = %rule.name, "alert raised");
    Ok(())
}

async fn recover(
    db: &Db,
    device_id: u32,
    rule: &Rule,
    alert: Option<(u64, i64)>,
    out: &mut DeviceAlerts,
) -> Result<(), DbError> {
    if alert.is_some_and(|(_, s)| s == state::RECOVERED) {
        return Ok(());
    }
    let mut statements = vec![alert_log(device_id, rule.id, state::RECOVERED, None)];
    statements.push(match alert {
        Some((id, _)) => {
            let mut st = Statement::new(
                "UPDATE `alerts` SET `state` = ?, `open` = 1, `timestamp` = NOW(), `note` = '' WHERE `id` = ?",
            );
            st.args = vec![Val::Int(state::RECOVERED), Val::UInt(id)];
            st
        }
        None => new_alert(device_id, rule.id, state::RECOVERED),
    });
    db.transaction(&statements).await?;
    out.recovered += 1;
    tracing::info!(device = device_id, rule = rule.id, name = %rule.name, "alert recovered");
    Ok(())
}

fn alert_log(device_id: u32, rule_id: u64, state: i64, details: Option<&str>) -> Statement {
    let mut st = Statement::new(
        "INSERT INTO `alert_log` (`rule_id`, `device_id`, `state`, `details`, `time_logged`) VALUES (?, ?, ?, ?, NOW())",
    );
    st.args = vec![
        Val::UInt(rule_id),
        Val::from(device_id),
        Val::Int(state),
        details.map_or(Val::Null, |j| Val::Bytes(details::compress(j))),
    ];
    st
}

fn new_alert(device_id: u32, rule_id: u64, state: i64) -> Statement {
    let mut st = Statement::new(
        "INSERT INTO `alerts` (`device_id`, `rule_id`, `state`, `alerted`, `open`, `timestamp`, `info`) \
         VALUES (?, ?, ?, 0, 1, NOW(), '[]')",
    );
    st.args = vec![Val::from(device_id), Val::UInt(rule_id), Val::Int(state)];
    st
}

async fn log_event(db: &Db, device_id: u32, message: &str) -> Result<(), DbError> {
    let mut st = Statement::new(
        "INSERT INTO `eventlog` (`device_id`, `datetime`, `message`, `type`, `reference`, `username`, `severity`) \
         VALUES (?, NOW(), ?, 'alert', NULL, '', ?)",
    );
    st.args = vec![
        Val::from(device_id),
        Val::text(message),
        Val::Int(SEVERITY_ERROR),
    ];
    db.execute(&st).await.map(|_| ())
}
