//! A device's alert rules after its poll (`LibreNMS/Alert/AlertRules.php`):
//! skipped under a maintenance that skips alerts; with `disable_notify`,
//! its alerts cleared; else every enabled rule that applies to it run with
//! the device id as its parameter, and its alert opened, refreshed or
//! recovered as LibreNMS's state machine says.

use serde_json::Value;

use rustc_hash::FxHashMap;

use super::details::{self, PhpRow};
use super::{Macros, QueryBuilder, contacts, maintenance};
use crate::config::AlertSettings;
use crate::db::{Db, DbError, Statement, Val};
use crate::librenms::php::Php;

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
    /// `(bool) ($rule->extra['invert'] ?? false)`.
    invert: bool,
    invert_map: i64,
}

impl Rule {
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

/// Where the rules apply: each rule's maps, and the batch's devices'
/// locations and groups (`AlertRule::forDevice()`).
#[derive(Default)]
struct Maps {
    devices: FxHashMap<u64, Vec<u64>>,
    groups: FxHashMap<u64, Vec<u64>>,
    locations: FxHashMap<u64, Vec<u64>>,
    device_groups: FxHashMap<u32, Vec<u64>>,
    device_location: FxHashMap<u32, u64>,
}

impl Maps {
    /// Rules mapped to nothing apply everywhere; a map applies to the
    /// devices it names (the device, one of its groups, its location), an
    /// inverted map to every other device.
    fn applies(&self, rule: &Rule, device: u32) -> bool {
        let devices = self.devices.get(&rule.id);
        let groups = self.groups.get(&rule.id);
        let locations = self.locations.get(&rule.id);
        if devices.is_none() && groups.is_none() && locations.is_none() {
            return true;
        }
        let named = devices.is_some_and(|d| d.contains(&u64::from(device)))
            || groups.is_some_and(|g| {
                self.device_groups
                    .get(&device)
                    .is_some_and(|mine| mine.iter().any(|x| g.contains(x)))
            })
            || locations.is_some_and(|l| {
                self.device_location
                    .get(&device)
                    .is_some_and(|loc| l.contains(loc))
            });
        match rule.invert_map {
            0 => named,
            1 => !named,
            _ => false,
        }
    }
}

/// One kind of rule map: the ids (`id`) each rule (`rule_id`) names.
async fn rule_map(db: &Db, sql: &str) -> Result<FxHashMap<u64, Vec<u64>>, DbError> {
    let mut map: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
    for r in db.fetch(&Statement::new(sql)).await? {
        map.entry(r.u64("rule_id").unwrap_or(0))
            .or_default()
            .push(r.u64("id").unwrap_or(0));
    }
    Ok(map)
}

/// Device ids as bind values (`Statement::values` writes their marks).
fn ids(ids: &[u32]) -> impl Iterator<Item = Val> + '_ {
    ids.iter().map(|i| Val::from(*i))
}

async fn load_maps(db: &Db, devices: &[u32]) -> Result<Maps, DbError> {
    let mut maps = Maps {
        devices: rule_map(db, "SELECT m.`rule_id`, m.`device_id` AS `id` FROM `alert_device_map` m JOIN `devices` d ON d.`device_id` = m.`device_id`").await?,
        groups: rule_map(db, "SELECT m.`rule_id`, g.`id` FROM `alert_group_map` m JOIN `device_groups` g ON g.`id` = m.`group_id`").await?,
        locations: rule_map(db, "SELECT m.`rule_id`, l.`id` FROM `alert_location_map` m JOIN `locations` l ON l.`id` = m.`location_id`").await?,
        ..Maps::default()
    };
    if !devices.is_empty() {
        let mut st = Statement::new(
            "SELECT gd.`device_group_id`, gd.`device_id` FROM `device_group_device` gd \
             JOIN `device_groups` g ON g.`id` = gd.`device_group_id` WHERE gd.`device_id` IN (",
        );
        st.values(db.dialect(), ids(devices)).push(")");
        for r in db.fetch_emulated(&st).await? {
            let device = r.u64("device_id").unwrap_or(0) as u32;
            maps.device_groups
                .entry(device)
                .or_default()
                .push(r.u64("device_group_id").unwrap_or(0));
        }
    }
    Ok(maps)
}

/// Runs the alert rules of one device, as LibreNMS does after its poll.
pub async fn run_for_device(
    db: &Db,
    settings: &AlertSettings,
    macros: &Macros,
    device_id: u32,
) -> Result<DeviceAlerts, DbError> {
    Ok(run_for_devices(db, settings, macros, &[device_id])
        .await?
        .pop()
        .map(|(_, a)| a)
        .unwrap_or_default())
}

/// Runs the alert rules of a batch of devices, with the result of running
/// them one device at a time, in fewer statements: each rule once for all
/// the devices it applies to, when its SQL is anchored on the device as
/// LibreNMS's builder writes it. Statements whose text depends on the
/// batch are bound on the client (their shapes would churn the prepared
/// statement cache).
pub async fn run_for_devices(
    db: &Db,
    settings: &AlertSettings,
    macros: &Macros,
    ids: &[u32],
) -> Result<Vec<(u32, DeviceAlerts)>, DbError> {
    let mut out: Vec<(u32, DeviceAlerts)> =
        ids.iter().map(|i| (*i, DeviceAlerts::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut st = Statement::new(
        "SELECT `device_id`, `disable_notify`, `location_id` FROM `devices` WHERE `device_id` IN (",
    );
    st.values(db.dialect(), self::ids(ids)).push(")");
    let found = db.fetch_emulated(&st).await?;
    let maintenance = maintenance::statuses(db, ids, &settings.timezone).await?;
    let mut active: Vec<u32> = Vec::new();
    let mut silenced: Vec<u32> = Vec::new();
    let mut locations: FxHashMap<u32, u64> = FxHashMap::default();
    for (id, result) in &mut out {
        let Some(row) = found
            .iter()
            .find(|r| r.u64("device_id") == Some(u64::from(*id)))
        else {
            result.skipped = Some(Skipped::Missing);
            continue;
        };
        if maintenance.get(id) == Some(&maintenance::Status::SkipAlerts) {
            tracing::info!(device = *id, "under maintenance, skipping alert rules");
            result.skipped = Some(Skipped::Maintenance);
        } else if row.i64("disable_notify").unwrap_or(0) != 0 {
            tracing::info!(
                device = *id,
                "alerting disabled for the device: clearing its alerts"
            );
            result.skipped = Some(Skipped::NotifyDisabled);
            silenced.push(*id);
        } else {
            if let Some(loc) = row.u64("location_id") {
                locations.insert(*id, loc);
            }
            active.push(*id);
        }
    }
    if !silenced.is_empty() {
        let mut st = Statement::new("UPDATE `alerts` SET `state` = ");
        st.value(db.dialect(), Val::Int(state::CLEAR))
            .push(", `alerted` = 0, `open` = 0 WHERE `device_id` IN (")
            .values(db.dialect(), self::ids(&silenced))
            .push(")");
        db.execute(&st).await?;
    }
    if active.is_empty() {
        return Ok(out);
    }
    let rules: Vec<Rule> = db
        .fetch(&Statement::new(
            "SELECT `id`, `name`, `query`, `builder`, `extra`, `invert_map` FROM `alert_rules` WHERE `disabled` = 0 ORDER BY `id`",
        ))
        .await?
        .into_iter()
        .map(|r| Rule {
            id: r.u64("id").unwrap_or(0),
            name: r.string("name").unwrap_or_default(),
            query: r.string("query").unwrap_or_default(),
            builder: r.string("builder").unwrap_or_default(),
            invert: serde_json::from_str::<Value>(&r.string("extra").unwrap_or_default())
                .ok()
                .and_then(|extra| extra.get("invert").map(Php::json_truthy))
                .unwrap_or(false),
            invert_map: r.i64("invert_map").unwrap_or(0),
        })
        .collect();
    let mut maps = load_maps(db, &active).await?;
    maps.device_location = locations;
    // Each rule's latest alert for each device, read once.
    let mut st = Statement::new(
        "SELECT `id`, `device_id`, `rule_id`, `state` FROM `alerts` WHERE `device_id` IN (",
    );
    st.values(db.dialect(), self::ids(&active))
        .push(") ORDER BY `id`");
    let mut latest: FxHashMap<(u32, u64), (u64, i64)> = FxHashMap::default();
    for r in db.fetch_emulated(&st).await? {
        latest.insert(
            (
                r.u64("device_id").unwrap_or(0) as u32,
                r.u64("rule_id").unwrap_or(0),
            ),
            (r.u64("id").unwrap_or(0), r.i64("state").unwrap_or(0)),
        );
    }
    for rule in &rules {
        let targets: Vec<u32> = active
            .iter()
            .copied()
            .filter(|d| maps.applies(rule, *d))
            .collect();
        if targets.is_empty() {
            continue;
        }
        for d in &targets {
            if let Some((_, r)) = out.iter_mut().find(|(id, _)| id == d) {
                r.rules += 1;
            }
        }
        let Some(sql) = rule.sql(macros) else {
            continue;
        };
        for (device, result) in rule_rows(db, &sql, &targets).await? {
            let slot = &mut out
                .iter_mut()
                .find(|(id, _)| *id == device)
                .expect("a device of the batch")
                .1;
            let rows = match result {
                Ok(rows) => rows,
                Err(e) => {
                    // A broken rule costs only itself.
                    slot.failed += 1;
                    tracing::warn!(device, rule = rule.id, error = %e, "alert rule failed");
                    let message = pdo_message(&e, &sql, device);
                    log_event(
                        db,
                        device,
                        &format!("Error in alert rule {} ({}): {message}", rule.name, rule.id),
                    )
                    .await?;
                    continue;
                }
            };
            let alert = latest.get(&(device, rule.id)).copied();
            // `! empty($rows) !== $invert`
            let matched = !rows.is_empty();
            if matched != rule.invert {
                trigger(db, settings, device, rule, &rows, alert, slot).await?;
            } else {
                recover(db, device, rule, alert, slot).await?;
            }
        }
    }
    Ok(out)
}

/// A failed rule's error as Laravel's `QueryException` says it (what
/// LibreNMS logs): the SQLSTATE with PDO's name for its class, MySQL's
/// number and message, the connection and the SQL with its binding.
fn pdo_message(error: &str, sql: &str, device: u32) -> String {
    let text = error
        .trim_start_matches("database error: ")
        .trim_start_matches("error returned from database: ");
    // sqlx writes "1054 (42S22): Unknown column ...".
    let parsed = text.split_once(" (").and_then(|(number, rest)| {
        let (state, message) = rest.split_once("): ")?;
        number.parse::<u32>().ok()?;
        Some((number, state, message))
    });
    let sql =
        crate::db::emulate::bind(sql, &[Val::from(device)]).unwrap_or_else(|_| sql.to_string());
    match parsed {
        Some((number, state, message)) => {
            let class = match state {
                "42S02" => "Base table or view not found",
                "42S22" => "Column not found",
                "42000" => "Syntax error or access violation",
                "23000" => "Integrity constraint violation",
                "22007" => "Invalid datetime format",
                "22003" => "Numeric value out of range",
                "21000" => "Cardinality violation",
                _ => "General error",
            };
            format!(
                "SQLSTATE[{state}]: {class}: {number} {message} (Connection: mysql, SQL: {sql})"
            )
        }
        None => format!("{text} (Connection: mysql, SQL: {sql})"),
    }
}

/// The column that says whose a row of a batched rule is.
const BATCH_DEVICE: &str = "ironpoll_alert_device";

/// The anchor LibreNMS's builder puts first in every rule's WHERE.
const ANCHOR: &str = "WHERE (devices.device_id = ?";

/// A rule's result rows for each of `targets` (or the error that rule
/// gave): one statement for all of them when the SQL is anchored as the
/// builder writes it, else one per device.
async fn rule_rows(
    db: &Db,
    sql: &str,
    targets: &[u32],
) -> Result<Vec<(u32, Result<Vec<PhpRow>, String>)>, DbError> {
    let batchable = targets.len() > 1
        && sql.starts_with("SELECT * FROM ")
        && sql.matches(ANCHOR).count() == 1
        && crate::db::emulate::bind(sql, &[Val::Int(0)]).is_ok();
    if batchable {
        let list = targets
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let text = sql
            .replacen(
                "SELECT * FROM ",
                &format!("SELECT *, devices.device_id AS `{BATCH_DEVICE}` FROM "),
                1,
            )
            .replacen(ANCHOR, &format!("WHERE (devices.device_id IN ({list})"), 1);
        return match db.fetch_emulated(&Statement::new(text)).await {
            Ok(rows) => {
                let mut by_device: FxHashMap<u32, Vec<PhpRow>> = FxHashMap::default();
                for row in &rows {
                    let mut php = details::php_row(row);
                    let at = php.iter().position(|(c, _)| c == BATCH_DEVICE);
                    let owner = at
                        .map(|i| php.remove(i).1)
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0) as u32;
                    by_device.entry(owner).or_default().push(php);
                }
                Ok(targets
                    .iter()
                    .map(|d| (*d, Ok(by_device.remove(d).unwrap_or_default())))
                    .collect())
            }
            Err(e) if e.is_unavailable() => Err(e),
            Err(e) => {
                let e = e.to_string();
                Ok(targets.iter().map(|d| (*d, Err(e.clone()))).collect())
            }
        };
    }
    let mut out = Vec::with_capacity(targets.len());
    for d in targets {
        let mut st = Statement::new(sql);
        st.args.push(Val::from(*d));
        match db.fetch_emulated(&st).await {
            Ok(rows) => out.push((*d, Ok(rows.iter().map(details::php_row).collect()))),
            Err(e) if e.is_unavailable() => return Err(e),
            Err(e) => out.push((*d, Err(e.to_string()))),
        }
    }
    Ok(out)
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
