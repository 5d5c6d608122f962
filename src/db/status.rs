//! What `ironpoll status` reads: the cluster's nodes as LibreNMS's Poller
//! page shows them (`poller_cluster` and `poller_cluster_stats` for
//! dispatcher nodes, `pollers` for cron ones), and the devices overdue by
//! more than one polling period, with why.

use serde::Serialize;

use super::{Db, DbError, Statement, Val};

/// A dispatcher node's `poller_cluster` row and its queue rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterNode {
    pub node_id: String,
    pub poller_name: String,
    pub poller_version: String,
    pub poller_groups: String,
    pub master: bool,
    /// Seconds since its last report, by the database clock.
    pub last_report_age: i64,
    pub queues: Vec<NodeQueue>,
}

/// A `poller_cluster_stats` row: one period's work of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeQueue {
    pub poller_type: String,
    pub depth: u64,
    pub devices: u64,
    pub worker_seconds: f64,
    pub workers: u64,
    pub frequency: u64,
}

/// A cron poller's `pollers` row (poller-wrapper.py, or ironpoll in a
/// wrapper cluster).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CronPoller {
    pub poller_name: String,
    pub last_polled_age: i64,
    pub devices: u64,
    pub time_taken: f64,
}

/// A device past its period, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverdueDevice {
    pub device_id: u32,
    pub hostname: String,
    pub poller_group: i64,
    /// Seconds since its last poll; None when never polled.
    pub since_polled: Option<i64>,
    /// `down: <status_reason>`, `never polled` (`: not discovered yet`),
    /// or `failed or not started: the last complete poll ended <n> s ago`
    /// (polls abandoned or discarded, or not started for want of room).
    pub why: String,
}

pub async fn cluster_nodes(db: &Db) -> Result<Vec<ClusterNode>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new(
        "SELECT `id`, `node_id`, `poller_name`, `poller_version`, `poller_groups`, `master`, ",
    );
    st.push(&format!(
        "{} - {} AS `age` FROM `poller_cluster` ORDER BY `poller_name`",
        d.unix_now(),
        d.unix("`last_report`")
    ));
    let rows = db.fetch(&st).await?;
    let stats = db
        .fetch(&Statement::new(
            "SELECT `parent_poller`, `poller_type`, `depth`, `devices`, `worker_seconds`, `workers`, `frequency` FROM `poller_cluster_stats` ORDER BY `id`",
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let id = r.u64("id").unwrap_or(0);
            ClusterNode {
                node_id: r.string("node_id").unwrap_or_default(),
                poller_name: r.string("poller_name").unwrap_or_default(),
                poller_version: r.string("poller_version").unwrap_or_default(),
                poller_groups: r.string("poller_groups").unwrap_or_default(),
                master: r.i64("master").unwrap_or(0) != 0,
                last_report_age: r.i64("age").unwrap_or(0),
                queues: stats
                    .iter()
                    .filter(|s| s.u64("parent_poller") == Some(id))
                    .map(|s| NodeQueue {
                        poller_type: s.string("poller_type").unwrap_or_default(),
                        depth: s.u64("depth").unwrap_or(0),
                        devices: s.u64("devices").unwrap_or(0),
                        worker_seconds: s.f64("worker_seconds").unwrap_or(0.0),
                        workers: s.u64("workers").unwrap_or(0),
                        frequency: s.u64("frequency").unwrap_or(0),
                    })
                    .collect(),
            }
        })
        .collect())
}

pub async fn cron_pollers(db: &Db) -> Result<Vec<CronPoller>, DbError> {
    let d = db.dialect();
    let st = Statement::new(format!(
        "SELECT `poller_name`, `devices`, `time_taken`, {} - {} AS `age` FROM `pollers` ORDER BY `poller_name`",
        d.unix_now(),
        d.unix("`last_polled`")
    ));
    Ok(db
        .fetch(&st)
        .await?
        .iter()
        .map(|r| CronPoller {
            poller_name: r.string("poller_name").unwrap_or_default(),
            last_polled_age: r.i64("age").unwrap_or(0),
            devices: r.u64("devices").unwrap_or(0),
            time_taken: r.f64("time_taken").unwrap_or(0.0),
        })
        .collect())
}

/// Enabled devices of `groups` (all when None) whose last poll is older
/// than one period (`frequency` seconds) plus what it took, or that were
/// never polled; the longest waiting first.
pub async fn overdue(
    db: &Db,
    frequency: u32,
    groups: Option<&[i64]>,
) -> Result<Vec<OverdueDevice>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new(format!(
        "SELECT `device_id`, `hostname`, `poller_group`, `status`, `status_reason`, `last_discovered` IS NULL AS `undiscovered`, {} - {} AS `since` FROM `devices` WHERE `disabled` = 0 AND (`last_polled` IS NULL OR {} - {} > ",
        d.unix_now(),
        d.unix("`last_polled`"),
        d.unix_now(),
        d.unix("`last_polled`"),
    ));
    st.value(d, Val::Int(i64::from(frequency)));
    st.push(" + COALESCE(`last_polled_timetaken`, 0))");
    if let Some(groups) = groups {
        st.push(" AND `poller_group` IN (");
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                st.push(", ");
            }
            st.value(d, Val::Int(*g));
        }
        st.push(")");
    }
    st.push(" ORDER BY `last_polled` IS NOT NULL, `last_polled`, `device_id`");
    Ok(db
        .fetch(&st)
        .await?
        .iter()
        .filter_map(|r| {
            let since = r.i64("since");
            let down = r.i64("status") == Some(0);
            let reason = r.string("status_reason").unwrap_or_default();
            let why = match (since, down) {
                // status_reason says what the last check found.
                (_, true) if !reason.is_empty() => format!("down: {reason}"),
                // LibreNMS polls a device only after its first discovery.
                (None, _) if r.i64("undiscovered") == Some(1) => {
                    "never polled: not discovered yet".to_string()
                }
                (None, _) => "never polled".to_string(),
                (Some(_), true) => "down".to_string(),
                // Its polls fail (abandoned, discarded) or do not start.
                (Some(s), false) => {
                    format!("failed or not started: the last complete poll ended {s} s ago")
                }
            };
            Some(OverdueDevice {
                device_id: u32::try_from(r.u64("device_id")?).ok()?,
                hostname: r.string("hostname").unwrap_or_default(),
                poller_group: r.i64("poller_group").unwrap_or(0),
                since_polled: since,
                why,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device in the embedded store: its name, status, reason, seconds
    /// since its last poll (None: never), discovered, disabled, group.
    async fn add(
        db: &Db,
        name: &str,
        up: bool,
        reason: &str,
        polled_ago: Option<i64>,
        discovered: bool,
        disabled: bool,
    ) {
        let d = db.dialect();
        let ago = |s: i64| format!("datetime('now', '-{s} seconds')");
        let sql = format!(
            "INSERT INTO `devices` (`hostname`, `community`, `status`, `status_reason`, `disabled`, `last_polled`, `last_polled_timetaken`, `last_discovered`) VALUES ('{name}', 'public', {}, '{reason}', {}, {}, 10, {})",
            i32::from(up),
            i32::from(disabled),
            polled_ago.map_or("NULL".to_string(), ago),
            if discovered { d.now() } else { "NULL" },
        );
        db.execute(&Statement::new(sql)).await.unwrap();
    }

    #[tokio::test]
    async fn overdue_devices_come_with_why_and_the_rest_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(dir.path().join("t.db").to_str().unwrap(), 1)
            .await
            .unwrap();
        db.create_schema().await.unwrap();
        add(&db, "fresh", true, "", Some(100), true, false).await;
        // One period plus what the last poll took (10 s) is not overdue.
        add(&db, "just-due", true, "", Some(305), true, false).await;
        add(&db, "failing", true, "", Some(900), true, false).await;
        add(&db, "dead", false, "icmp,snmp", Some(2000), true, false).await;
        add(&db, "new", false, "", None, false, false).await;
        add(&db, "unpolled", true, "", None, true, false).await;
        add(&db, "off", true, "", None, true, true).await;
        let got = overdue(&db, 300, None).await.unwrap();
        // The clock may tick between the insert and the query.
        let failing = got.iter().find(|d| d.hostname == "failing").unwrap();
        let ago = failing.since_polled.unwrap();
        assert!((900..=902).contains(&ago), "{ago}");
        let why: Vec<(&str, &str)> = got
            .iter()
            .map(|d| (d.hostname.as_str(), d.why.as_str()))
            .collect();
        let failing_why =
            format!("failed or not started: the last complete poll ended {ago} s ago");
        assert_eq!(
            why,
            [
                ("new", "never polled: not discovered yet"),
                ("unpolled", "never polled"),
                ("dead", "down: icmp,snmp"),
                ("failing", failing_why.as_str()),
            ]
        );
        // A group filter keeps only that group's (all are in group 0).
        assert!(overdue(&db, 300, Some(&[7])).await.unwrap().is_empty());
        assert_eq!(overdue(&db, 300, Some(&[0])).await.unwrap().len(), 4);
    }
}
