//! Alert rules and device groups after each poll, against real MariaDB
//! holding LibreNMS's whole schema and LibreNMS's own rules (its
//! `alert_rules.json`, stored as builder JSON only so that every rule's
//! SQL is ironpoll's), over simulated devices polled by the engine.

use std::sync::Arc;
use std::time::Duration;

use ironpoll::alerting::details;
use ironpoll::config::{Layer, Mode, Source, resolve};
use ironpoll::db::{Statement, Val, devices, schema};
use ironpoll::modules::Selection;
use ironpoll::poller::DeviceReport;
use ironpoll::poller::engine::Engine;
use ironpoll::sim::profile::Profile;

use crate::fixtures::librenms_fixtures;
use crate::services::TestDb;
use crate::support::*;
use crate::within;

/// A test database with every table of LibreNMS's schema.
pub async fn librenms_db() -> TestDb {
    let t = TestDb::new().await;
    let yaml = std::fs::read_to_string(librenms_fixtures().join("db_schema.yaml")).unwrap();
    for sql in schema::mysql_ddl_from_yaml(&yaml).unwrap() {
        t.db.execute(&Statement::new(sql.clone()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    t
}

/// LibreNMS's rule collection (all of it, or the named rules) as rules
/// with their builder and no stored query, and LibreNMS's default extra.
pub async fn load_librenms_rules(t: &TestDb, only: &[&str]) -> usize {
    let path = librenms_fixtures().join("definitions/alert_rules.json");
    let rules: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    for r in rules {
        let name = r["name"].as_str().unwrap();
        // The collection names one rule twice; names are unique in
        // alert_rules.
        if (!only.is_empty() && !only.contains(&name)) || !seen.insert(name.to_string()) {
            continue;
        }
        let mut extra = serde_json::json!({"mute": false, "count": -1, "delay": 300, "invert": false, "interval": 300});
        if let Some(e) = r.get("extra").and_then(|e| e.as_str()) {
            let e: serde_json::Value = serde_json::from_str(e).unwrap();
            for (k, v) in e.as_object().unwrap() {
                extra[k] = v.clone();
            }
        }
        add_rule(t, name, &r["builder"].to_string(), "", &extra.to_string()).await;
        n += 1;
    }
    n
}

/// The rules of LibreNMS's collection that read a table its schema does
/// not have: they fail in LibreNMS too.
fn broken_in_librenms() -> Vec<String> {
    fn tables(group: &serde_json::Value, out: &mut Vec<String>) {
        for r in group["rules"].as_array().into_iter().flatten() {
            if r.get("rules").is_some() {
                tables(r, out);
            } else if let Some((t, _)) = r["field"].as_str().and_then(|f| f.split_once('.')) {
                out.push(t.to_string());
            }
        }
    }
    let rules: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(librenms_fixtures().join("definitions/alert_rules.json")).unwrap(),
    )
    .unwrap();
    rules
        .iter()
        .filter(|r| {
            let mut t = Vec::new();
            tables(&r["builder"], &mut t);
            t.iter()
                .any(|t| t != "macros" && ironpoll::alerting::relationships::shape(t).is_none())
        })
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every alert error names one of `rules`.
fn only_errors_of(errors: &[String], rules: &[String]) {
    for e in errors {
        assert!(
            rules
                .iter()
                .any(|r| e.starts_with(&format!("Error in alert rule {r} ("))),
            "an alert rule failed that LibreNMS runs: {e}"
        );
    }
}

async fn add_rule(t: &TestDb, name: &str, builder: &str, query: &str, extra: &str) -> u64 {
    let mut st = Statement::new(
        "INSERT INTO `alert_rules` (`severity`, `extra`, `disabled`, `name`, `query`, `builder`) VALUES ('critical', ?, 0, ?, ?, ?)",
    );
    st.args = vec![
        Val::text(extra),
        Val::text(name),
        Val::text(query),
        Val::text(builder),
    ];
    t.db.insert(&st).await.unwrap()
}

pub async fn rule_id(t: &TestDb, name: &str) -> u64 {
    let mut st = Statement::new("SELECT `id` FROM `alert_rules` WHERE `name` = ?");
    st.args.push(Val::text(name));
    t.db.fetch(&st).await.unwrap()[0].u64("id").unwrap()
}

async fn exec(t: &TestDb, sql: &str) {
    t.db.execute(&Statement::new(sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The alert of a device and rule: (state, open, alerted).
pub async fn alert(t: &TestDb, device: u32, rule: u64) -> Option<(i64, i64, i64)> {
    t.db.fetch(&Statement::new(format!(
        "SELECT `state`, `open`, `alerted` FROM `alerts` WHERE `device_id` = {device} AND `rule_id` = {rule}"
    )))
    .await
    .unwrap()
    .first()
    .map(|r| {
        (
            r.i64("state").unwrap(),
            r.i64("open").unwrap(),
            r.i64("alerted").unwrap(),
        )
    })
}

/// The alert_log states of a device and rule, oldest first.
pub async fn log_states(t: &TestDb, device: u32, rule: u64) -> Vec<i64> {
    t.db.fetch(&Statement::new(format!(
        "SELECT `state` FROM `alert_log` WHERE `device_id` = {device} AND `rule_id` = {rule} ORDER BY `id`"
    )))
    .await
    .unwrap()
    .iter()
    .map(|r| r.i64("state").unwrap())
    .collect()
}

async fn latest_details(
    t: &TestDb,
    device: u32,
    rule: u64,
) -> serde_json::Map<String, serde_json::Value> {
    let rows = t
        .db
        .fetch(&Statement::new(format!(
            "SELECT `details` FROM `alert_log` WHERE `device_id` = {device} AND `rule_id` = {rule} ORDER BY `id` DESC LIMIT 1"
        )))
        .await
        .unwrap();
    match rows[0].get("details") {
        Val::Bytes(b) => details::decompress(b),
        other => panic!("details not stored compressed: {other:?}"),
    }
}

async fn alert_errors(t: &TestDb) -> Vec<String> {
    t.db.fetch(&Statement::new(
        "SELECT `message` FROM `eventlog` WHERE `type` = 'alert' AND `severity` = 5 ORDER BY `event_id`",
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| r.string("message").unwrap())
    .collect()
}

async fn alerting_engine(t: &TestDb, overrides: &[(&str, &str)]) -> Arc<Engine> {
    // No LibreNMS install: the modules PHP would poll are skipped, so
    // LibreNMS's post-poll work is ironpoll's.
    let nowhere = std::env::temp_dir().join("ironpoll-no-librenms");
    alerting_engine_at(t, &nowhere.display().to_string(), overrides).await
}

/// The PHP-hand-off test's engine (no RRD, no ICMP) with a short SNMP
/// timeout, so that an unreachable device is down within a second.
async fn alerting_engine_at(
    t: &TestDb,
    librenms_dir: &str,
    overrides: &[(&str, &str)],
) -> Arc<Engine> {
    let mut all = vec![("snmp.timeout", "1"), ("snmp.retries", "0")];
    all.extend_from_slice(overrides);
    crate::modules_live::php_engine(t, std::path::Path::new(librenms_dir), &all).await
}

async fn poll(e: &Arc<Engine>) -> Vec<DeviceReport> {
    let list = devices::find(&e.db, "all").await.unwrap();
    let mut reports = Vec::new();
    e.poll_devices(list, &Selection::Configured, 16, |r| reports.push(r))
        .await
        .unwrap();
    reports.sort_by_key(|r| r.device_id);
    for r in &reports {
        assert!(
            matches!(r.after_poll, Some(Ok(_))),
            "device {}: {:?}",
            r.device_id,
            r.after_poll
        );
    }
    reports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librenms_rules_raise_hold_and_recover_a_down_device_once() {
    within(300, async {
        let t = librenms_db().await;
        let loaded = load_librenms_rules(&t, &[]).await;
        assert!(loaded >= 200, "only {loaded} rules in LibreNMS's collection");
        let sim = port_fleet(Profile::Switch48, 2, &[]).await;
        let port_a = sim.fleet[0].addr.port();
        let a = t.add_device("127.0.0.1", port_a, &[("sysContact", Val::text("noc@example.com"))]).await;
        let b = t.add_device("127.0.0.1", sim.fleet[1].addr.port(), &[]).await;
        let down_rule = rule_id(&t, "Devices up/down").await;
        let e = alerting_engine(&t, &[]).await;

        // Up: every rule that applies ran, and none of LibreNMS's rules
        // made SQL that MariaDB refuses.
        let reports = poll(&e).await;
        assert!(reports.iter().all(|r| r.status), "{reports:?}");
        let done = reports[0].after_poll.clone().unwrap().unwrap().alerts.unwrap();
        assert_eq!(done.rules as usize, loaded, "{done:?}");
        // Only the rules that read a table LibreNMS's schema lacks failed
        // (as they do in LibreNMS), each logged once per device.
        let broken = broken_in_librenms();
        assert!(!broken.is_empty() && broken.len() < 20, "{broken:?}");
        assert_eq!(done.failed as usize, broken.len(), "{:?}", alert_errors(&t).await);
        let errors = alert_errors(&t).await;
        assert_eq!(errors.len(), 2 * broken.len());
        only_errors_of(&errors, &broken);
        // LibreNMS records a rule that does not match a device it never
        // alerted on as recovered.
        assert_eq!(alert(&t, a, down_rule).await, Some((0, 1, 0)));
        assert_eq!(log_states(&t, a, down_rule).await, [0]);

        // Down (its agent unreachable): raised once, with the rule's rows.
        let dead = free_udp_port();
        exec(&t, &format!("UPDATE `devices` SET `port` = {dead} WHERE `device_id` = {a}")).await;
        let reports = poll(&e).await;
        assert!(!reports[0].status && reports[1].status);
        assert_eq!(alert(&t, a, down_rule).await, Some((1, 1, 0)));
        assert_eq!(log_states(&t, a, down_rule).await, [0, 1]);
        let d = latest_details(&t, a, down_rule).await;
        assert_eq!(d["rule"][0]["device_id"], serde_json::json!(a));
        assert_eq!(d["rule"][0]["hostname"], "127.0.0.1");
        assert_eq!(d["rule"][0]["status"], 0);
        // LibreNMS's default: the contacts are the default address alone,
        // and there is none.
        assert_eq!(d["contacts"], serde_json::json!([]));
        // The device that stayed up raised nothing.
        assert_eq!(alert(&t, b, down_rule).await, Some((0, 1, 0)));

        // Still down: the same alert, its details refreshed, no new row.
        exec(&t, &format!("UPDATE `alert_log` SET `details` = NULL WHERE `device_id` = {a} AND `rule_id` = {down_rule} AND `state` = 1")).await;
        poll(&e).await;
        assert_eq!(log_states(&t, a, down_rule).await, [0, 1]);
        assert_eq!(alert(&t, a, down_rule).await, Some((1, 1, 0)));
        let d = latest_details(&t, a, down_rule).await;
        assert_eq!(d["rule"][0]["device_id"], serde_json::json!(a), "details refreshed");

        // Acknowledged: left alone while the rule still matches.
        exec(&t, &format!("UPDATE `alerts` SET `state` = 2 WHERE `device_id` = {a} AND `rule_id` = {down_rule}")).await;
        poll(&e).await;
        assert_eq!(alert(&t, a, down_rule).await, Some((2, 1, 0)));
        assert_eq!(log_states(&t, a, down_rule).await, [0, 1]);

        // Back up: recovered.
        exec(&t, &format!("UPDATE `devices` SET `port` = {port_a} WHERE `device_id` = {a}")).await;
        let reports = poll(&e).await;
        assert!(reports[0].status);
        assert_eq!(alert(&t, a, down_rule).await.map(|s| s.0), Some(0));
        assert_eq!(log_states(&t, a, down_rule).await, [0, 1, 0]);
        only_errors_of(&alert_errors(&t).await, &broken);
        let _ = e.finish().await;
        t.drop_database().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_maintenance_disable_notify_broken_rules_maps_and_groups() {
    within(300, async {
        let t = librenms_db().await;
        let sim = port_fleet(Profile::Switch48, 3, &[]).await;
        let a = t.add_device("127.0.0.1", sim.fleet[0].addr.port(), &[]).await;
        let b = t.add_device("127.0.0.1", sim.fleet[1].addr.port(), &[]).await;
        let c = t.add_device("127.0.0.1", sim.fleet[2].addr.port(), &[]).await;
        load_librenms_rules(&t, &["Sensor over limit - Check Device Health Settings"]).await;
        let sensor_rule = rule_id(&t, "Sensor over limit - Check Device Health Settings").await;
        // A sensor of A read from ifNumber, over its limit.
        exec(&t, &format!(
            "INSERT INTO `sensors` (`device_id`, `sensor_class`, `poller_type`, `sensor_oid`, `sensor_index`, `sensor_type`, `sensor_descr`, `sensor_divisor`, `sensor_multiplier`, `sensor_limit`, `sensor_alert`) \
             VALUES ({a}, 'temperature', 'snmp', '.1.3.6.1.2.1.2.1.0', '1', 'ironpoll-test', 'Board', 1, 1, 10, 1)"
        )).await;
        // A rule that only MariaDB can tell is broken, and one after it.
        let broken = add_rule(&t, "broken", "", "SELECT * FROM devices WHERE devices.device_id = ? AND no_such_column = 1", "{}").await;
        // Mapped to A only; mapped to A but inverted (so every device but A).
        let builder_up = r#"{"condition":"AND","rules":[{"id":"macros.device_up","field":"macros.device_up","type":"integer","input":"radio","operator":"equal","value":"1"}],"valid":true}"#;
        let only_a = add_rule(&t, "only A", builder_up, "", "{}").await;
        let not_a = add_rule(&t, "all but A", builder_up, "", "{}").await;
        exec(&t, &format!("INSERT INTO `alert_device_map` (`rule_id`, `device_id`) VALUES ({only_a}, {a}), ({not_a}, {a})")).await;
        exec(&t, &format!("UPDATE `alert_rules` SET `invert_map` = 1 WHERE `id` = {not_a}")).await;
        // An inverted rule: alerts when the device is NOT up.
        let inverted = add_rule(&t, "inverted", builder_up, "", r#"{"invert": true}"#).await;
        // B under a maintenance that skips alerts, now.
        exec(&t, "INSERT INTO `alert_schedule` (`schedule_id`, `recurring`, `start`, `end`, `title`, `notes`, `behavior`) \
                  VALUES (1, 0, UTC_TIMESTAMP() - INTERVAL 1 HOUR, UTC_TIMESTAMP() + INTERVAL 1 HOUR, 'window', '', 1)").await;
        exec(&t, &format!("INSERT INTO `alert_schedulables` (`schedule_id`, `alert_schedulable_id`, `alert_schedulable_type`) VALUES (1, {b}, 'device')")).await;
        // A recurring maintenance of C whose daily window is not now.
        exec(&t, "INSERT INTO `alert_schedule` (`schedule_id`, `recurring`, `start`, `end`, `recurring_day`, `title`, `notes`, `behavior`) \
                  VALUES (2, 1, UTC_TIMESTAMP() - INTERVAL 2 DAY + INTERVAL 2 HOUR, UTC_TIMESTAMP() + INTERVAL 2 DAY + INTERVAL 3 HOUR, '1,2,3,4,5,6,7', 'nightly', '', 1)").await;
        exec(&t, &format!("INSERT INTO `alert_schedulables` (`schedule_id`, `alert_schedulable_id`, `alert_schedulable_type`) VALUES (2, {c}, 'device')")).await;
        // Groups: dynamic on purpose, static holding B.
        exec(&t, r#"INSERT INTO `device_groups` (`id`, `name`, `type`, `rules`) VALUES
            (1, 'core', 'dynamic', '{"condition":"AND","rules":[{"id":"devices.purpose","field":"devices.purpose","type":"string","input":"text","operator":"equal","value":"core"}],"valid":true}'),
            (2, 'pinned', 'static', NULL),
            (3, 'broken group', 'dynamic', '{"condition":"AND","rules":[{"id":"devices.nothing","field":"devices.nothing","type":"string","input":"text","operator":"equal","value":"x"}],"valid":true}')"#).await;
        exec(&t, &format!("INSERT INTO `device_group_device` (`device_group_id`, `device_id`) VALUES (2, {b}), (3, {b})")).await;
        exec(&t, &format!("UPDATE `devices` SET `purpose` = 'core' WHERE `device_id` = {a}")).await;

        let e = alerting_engine(&t, &[]).await;
        let reports = poll(&e).await;
        assert!(reports.iter().all(|r| r.status), "{reports:?}");

        // The sensor polled over its limit raised the sensor rule.
        let current = t.scalar(&format!("SELECT `sensor_current` FROM `sensors` WHERE `device_id` = {a}")).await;
        assert!(current.as_f64().is_some_and(|v| v > 10.0), "{current:?}");
        assert_eq!(alert(&t, a, sensor_rule).await, Some((1, 1, 0)));
        let d = latest_details(&t, a, sensor_rule).await;
        assert_eq!(d["rule"][0]["sensor_descr"], "Board");
        // The broken rule is logged for each device it ran on, and cost
        // no other rule.
        let errors = alert_errors(&t).await;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with(&format!("Error in alert rule broken ({broken}): ")), "{errors:?}");
        assert!(errors[0].contains("no_such_column"), "{errors:?}");
        // As Laravel's QueryException says it, which LibreNMS logs.
        assert!(
            errors[0].contains("SQLSTATE[42S22]: Column not found: 1054 Unknown column 'no_such_column'")
                && errors[0].contains("(Connection: mysql, SQL: SELECT * FROM devices WHERE devices.device_id = "),
            "{errors:?}"
        );
        assert_eq!(alert(&t, a, broken).await, None);
        // Maps: "only A" on A alone, "all but A" on the others.
        assert_eq!(alert(&t, a, only_a).await, Some((1, 1, 0)));
        assert_eq!(alert(&t, c, only_a).await, None);
        assert_eq!(alert(&t, a, not_a).await, None);
        assert_eq!(alert(&t, c, not_a).await, Some((1, 1, 0)));
        // Inverted: up devices make it recover.
        assert_eq!(alert(&t, a, inverted).await, Some((0, 1, 0)));
        // B was under maintenance: no rule ran for it; C's window was not now.
        let b_alerts = t.scalar(&format!("SELECT COUNT(*) FROM `alerts` WHERE `device_id` = {b}")).await;
        assert_eq!(b_alerts.as_i64(), Some(0));
        assert!(alert(&t, c, inverted).await.is_some());
        // Groups: A joined "core"; B kept its static group and left the
        // group whose rules are broken.
        let groups = |dev: u32| {
            let db = t.db.clone();
            async move {
                db.fetch(&Statement::new(format!(
                    "SELECT `device_group_id` FROM `device_group_device` WHERE `device_id` = {dev} ORDER BY 1"
                )))
                .await
                .unwrap()
                .iter()
                .map(|r| r.u64("device_group_id").unwrap())
                .collect::<Vec<_>>()
            }
        };
        assert_eq!(groups(a).await, [1]);
        assert_eq!(groups(b).await, [2]);
        assert_eq!(groups(c).await, Vec::<u64>::new());

        // A's purpose changes: it leaves the group. C gets disable_notify:
        // its alerts are cleared and no rule runs.
        exec(&t, &format!("UPDATE `devices` SET `purpose` = 'edge' WHERE `device_id` = {a}")).await;
        exec(&t, &format!("UPDATE `devices` SET `purpose` = 'core', `disable_notify` = 1 WHERE `device_id` = {c}")).await;
        let c_logs = t.scalar(&format!("SELECT COUNT(*) FROM `alert_log` WHERE `device_id` = {c}")).await;
        let reports = poll(&e).await;
        assert_eq!(groups(a).await, Vec::<u64>::new());
        assert_eq!(groups(c).await, [1]);
        assert_eq!(alert(&t, c, not_a).await, Some((0, 0, 0)));
        let c_logs_after = t.scalar(&format!("SELECT COUNT(*) FROM `alert_log` WHERE `device_id` = {c}")).await;
        assert_eq!(c_logs, c_logs_after, "no rule ran for C");
        let c_done = reports[2].after_poll.clone().unwrap().unwrap().alerts.unwrap();
        assert_eq!(c_done.skipped, Some(ironpoll::alerting::rules::Skipped::NotifyDisabled));

        // alerting.native = off: nothing runs.
        let _ = e.finish().await;
        exec(&t, &format!("UPDATE `devices` SET `purpose` = 'core' WHERE `device_id` = {a}")).await;
        let e = alerting_engine(&t, &[("alerting.native", "off")]).await;
        assert!(e.alerting.is_err());
        let list = devices::find(&e.db, "all").await.unwrap();
        e.poll_devices(list, &Selection::Configured, 16, |r| assert!(r.after_poll.is_none()))
            .await
            .unwrap();
        assert_eq!(groups(a).await, Vec::<u64>::new());
        let _ = e.finish().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        t.drop_database().await;
    })
    .await;
}

/// Everything the rules wrote, in an order that does not depend on how
/// the devices were batched (and without the test database's name).
async fn written(t: &TestDb) -> Vec<String> {
    let name = t.url.rsplit('/').next().unwrap().to_string();
    let mut out = Vec::new();
    for sql in [
        "SELECT CONCAT_WS(' ', `device_id`, `rule_id`, `state`, `open`, `alerted`) AS `x` FROM `alerts` ORDER BY `device_id`, `rule_id`",
        "SELECT CONCAT_WS(' ', `device_id`, `rule_id`, `state`) AS `x` FROM `alert_log` ORDER BY `device_id`, `rule_id`, `id`",
        "SELECT CONCAT_WS(' ', `device_id`, `message`) AS `x` FROM `eventlog` ORDER BY `device_id`, `message`",
    ] {
        for r in t.db.fetch(&Statement::new(sql)).await.unwrap() {
            out.push(r.string("x").unwrap().replace(&name, "DB"));
        }
    }
    for r in t
        .db
        .fetch(&Statement::new(
            "SELECT `device_id`, `rule_id`, `details` FROM `alert_log` WHERE `details` IS NOT NULL ORDER BY `device_id`, `rule_id`, `id`",
        ))
        .await
        .unwrap()
    {
        let Val::Bytes(b) = r.get("details") else {
            panic!("details not compressed")
        };
        let mut d = details::decompress(b);
        if let Some(serde_json::Value::Array(rows)) = d.get_mut("rule") {
            rows.sort_by_key(|r| r.to_string());
        }
        out.push(format!("{:?} {:?} {}", r.u64("device_id"), r.u64("rule_id"), serde_json::Value::Object(d)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_what_one_device_at_a_time_writes() {
    use ironpoll::alerting::{Macros, rules};
    within(300, async {
        let settings = ironpoll::config::resolve(&[], ironpoll::config::settings_defaults(Mode::Librenms))
            .unwrap()
            .alert;
        let macros = Macros::builtin();
        let mut results = Vec::new();
        for batched in [true, false] {
            let t = librenms_db().await;
            load_librenms_rules(&t, &[]).await;
            add_rule(&t, "broken", "", "SELECT * FROM devices WHERE (devices.device_id = ?) AND nothing = 1", "{}").await;
            let mut ids = Vec::new();
            for (i, status) in [1, 0, 1, 0].iter().enumerate() {
                let id = t
                    .add_device(&format!("10.0.0.{i}"), 161, &[("status", Val::Int(*status)), ("uptime", Val::Int(30))])
                    .await;
                ids.push(id);
            }
            // A port of the first device over its utilisation threshold,
            // a sensor of the second over its limit.
            exec(&t, &format!(
                "INSERT INTO `ports` (`device_id`, `ifIndex`, `ifName`, `ifSpeed`, `ifInOctets_rate`, `ifOutOctets_rate`, `ifOperStatus`, `ifAdminStatus`) \
                 VALUES ({}, 1, 'eth0', 1000, 120, 0, 'down', 'up')", ids[0]
            )).await;
            exec(&t, &format!(
                "INSERT INTO `sensors` (`device_id`, `sensor_class`, `poller_type`, `sensor_oid`, `sensor_index`, `sensor_type`, `sensor_descr`, `sensor_current`, `sensor_limit`, `sensor_alert`) \
                 VALUES ({}, 'temperature', 'snmp', '.1', '1', 't', 'Board', 90, 70, 1)", ids[2]
            )).await;
            // The last device under a recurring maintenance whose daily
            // window spans midnight and holds now, every day.
            exec(&t, "INSERT INTO `alert_schedule` (`schedule_id`, `recurring`, `start`, `end`, `recurring_day`, `title`, `notes`, `behavior`) \
                      VALUES (1, 1, UTC_TIMESTAMP() - INTERVAL 1 DAY - INTERVAL 1 HOUR, UTC_TIMESTAMP() + INTERVAL 1 DAY - INTERVAL 2 HOUR, NULL, 'nights', '', 1)").await;
            exec(&t, &format!("INSERT INTO `alert_schedulables` (`schedule_id`, `alert_schedulable_id`, `alert_schedulable_type`) VALUES (1, {}, 'device')", ids[3])).await;
            // The same clock in both databases' rows.
            exec(&t, "UPDATE `devices` SET `inserted` = '2026-01-01 00:00:00', `last_discovered` = '2026-01-01 00:00:00'").await;
            exec(&t, "UPDATE `sensors` SET `lastupdate` = '2026-01-01 00:00:00'").await;
            for _ in 0..2 {
                if batched {
                    rules::run_for_devices(&t.db, &settings, &macros, &ids).await.unwrap();
                } else {
                    for id in &ids {
                        rules::run_for_device(&t.db, &settings, &macros, *id).await.unwrap();
                    }
                }
            }
            let maintained = t.scalar(&format!("SELECT COUNT(*) FROM `alerts` WHERE `device_id` = {}", ids[3])).await;
            assert_eq!(maintained.as_i64(), Some(0), "no rule ran under the maintenance");
            let down = t.scalar(&format!("SELECT COUNT(*) FROM `alerts` WHERE `device_id` = {} AND `state` = 1", ids[1])).await;
            assert!(down.as_i64().unwrap() > 0, "the other down device alerted");
            results.push(written(&t).await);
            t.drop_database().await;
        }
        assert!(results[0].len() > 100, "{}", results[0].len());
        assert!(results[0].iter().any(|l| l.contains("Board")), "the sensor rule raised");
        if results[0] != results[1] {
            let only_batched: Vec<_> = results[0].iter().filter(|l| !results[1].contains(l)).collect();
            let only_single: Vec<_> = results[1].iter().filter(|l| !results[0].contains(l)).collect();
            panic!("batched only: {only_batched:#?}\none at a time only: {only_single:#?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_says_who_runs_the_rules_and_reads_alert_settings() {
    within(120, async {
        let t = librenms_db().await;
        exec(&t, r#"INSERT INTO `config` (`config_name`, `config_value`) VALUES
            ('alert.default_only', 'false'), ('alert.default_mail', '"noc@example.com"'),
            ('alert.macros.rule.my_core', '"%devices.purpose = \\"core\\""')"#).await;
        let check = |extra: &[&str]| {
            let mut c = ironpoll();
            c.args(["check-config", "--db", &t.url, "--librenms-dir", "/nonexistent"])
                .args(extra)
                .current_dir(std::env::temp_dir());
            let out = run(c, Duration::from_secs(60));
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out)
        };
        let text = check(&[]);
        assert!(
            text.contains("# alert rules and device groups: run by ironpoll after each committed poll (alerting.native = auto)"),
            "{text}"
        );
        let line = |key: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{key} ")))
                .unwrap_or_else(|| panic!("{key} missing from\n{text}"))
                .to_string()
        };
        assert!(line("alert.default_only").contains("= false"));
        assert!(line("alert.default_mail").contains("noc@example.com"));
        assert!(line("alert.macros.rule.my_core").contains("devices.purpose"), "{text}");
        let text = check(&["--set", "alerting.native=off"]);
        assert!(text.contains("# alert rules and device groups: not run by ironpoll: alerting.native is off"), "{text}");
        t.drop_database().await;
    })
    .await;
}

/// A poll whose PHP run succeeded leaves LibreNMS's post-poll work to that
/// run (`auto`); `on` does it anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_php_poll_does_the_post_poll_work_unless_told_otherwise() {
    within(180, async {
        let t = librenms_db().await;
        load_librenms_rules(&t, &["Devices up/down"]).await;
        let rule = rule_id(&t, "Devices up/down").await;
        let sim = port_fleet(Profile::Switch48, 1, &[]).await;
        let id = t
            .add_device("127.0.0.1", sim.fleet[0].addr.port(), &[])
            .await;
        let librenms = tempfile::tempdir().unwrap();
        crate::modules_live::stand_in_lnms(librenms.path(), &t.url, 0.0);
        let dir = librenms.path().display().to_string();
        for (native, runs) in [("auto", false), ("on", true)] {
            let e = alerting_engine_at(&t, &dir, &[("alerting.native", native)]).await;
            let list = devices::find(&e.db, "all").await.unwrap();
            let mut reports = Vec::new();
            e.poll_devices(list, &Selection::Configured, 4, |r| reports.push(r))
                .await
                .unwrap();
            let r = &reports[0];
            assert_eq!(r.php.as_ref().and_then(|p| p.exit_code), Some(0), "{r:?}");
            assert_eq!(
                r.after_poll.is_some(),
                runs,
                "alerting.native = {native}: {r:?}"
            );
            assert_eq!(
                alert(&t, id, rule).await.is_some(),
                runs,
                "alerting.native = {native}"
            );
            let _ = e.finish().await;
        }
        t.drop_database().await;
    })
    .await;
}

/// The day of a recurring maintenance is taken in LibreNMS's application
/// time zone (PHP's date.timezone), here an offset MariaDB knows without
/// its time zone tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_maintenance_days_are_in_the_application_time_zone() {
    use ironpoll::alerting::{Macros, rules};
    within(120, async {
        let t = librenms_db().await;
        load_librenms_rules(&t, &["Devices up/down"]).await;
        let id = t.add_device("10.9.9.9", 161, &[("status", Val::Int(0))]).await;
        // Every hour of the day, on the day it is now at UTC+13 only.
        exec(&t, "INSERT INTO `alert_schedule` (`schedule_id`, `recurring`, `start`, `end`, `recurring_day`, `title`, `notes`, `behavior`) \
                  SELECT 1, 1, UTC_TIMESTAMP() - INTERVAL 1 DAY - INTERVAL 1 HOUR, UTC_TIMESTAMP() + INTERVAL 1 DAY - INTERVAL 2 HOUR, \
                  WEEKDAY(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', '+13:00')) + 1, 'tonga days', '', 1").await;
        exec(&t, &format!("INSERT INTO `alert_schedulables` (`schedule_id`, `alert_schedulable_id`, `alert_schedulable_type`) VALUES (1, {id}, 'device')")).await;
        let day = t.scalar("SELECT `recurring_day` FROM `alert_schedule`").await;
        assert!(!day.is_null(), "MariaDB knows the offset");
        let same_day = t
            .scalar("SELECT WEEKDAY(UTC_TIMESTAMP()) = WEEKDAY(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', '+13:00'))")
            .await
            .as_i64()
            == Some(1);
        let macros = Macros::builtin();
        for (tz, under) in [("+13:00", true), ("UTC", same_day), ("No/Such_Zone", same_day)] {
            let mut layer = Layer::new(Source::Flag, true);
            layer.set("php.timezone", serde_json::json!(tz));
            let settings = resolve(&[layer], ironpoll::config::settings_defaults(Mode::Librenms))
                .unwrap()
                .alert;
            let done = rules::run_for_device(&t.db, &settings, &macros, id).await.unwrap();
            assert_eq!(
                done.skipped == Some(rules::Skipped::Maintenance),
                under,
                "php.timezone = {tz}: {done:?}"
            );
        }
        t.drop_database().await;
    })
    .await;
}
