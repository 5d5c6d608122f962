//! This node's rows in `poller_cluster` and `poller_cluster_stats`, which
//! LibreNMS's poller page and `validate.php` read to see the node
//! (LibreNMS's dispatcher writes them every poller frequency).

use super::{Db, DbError, Statement, Val, upsert_clause};

/// One report: the node and one row per queue type it works.
#[derive(Debug, Clone)]
pub struct NodeReport {
    pub node_id: String,
    pub poller_name: String,
    pub poller_version: String,
    /// Comma-separated, as LibreNMS stores them.
    pub poller_groups: String,
    pub master: bool,
    pub queues: Vec<QueueStats>,
}

/// A `poller_cluster_stats` row.
#[derive(Debug, Clone)]
pub struct QueueStats {
    /// `poller`, `ping`, ...
    pub poller_type: &'static str,
    /// Devices waiting to be worked.
    pub depth: u64,
    /// Devices worked since the last report.
    pub devices: u64,
    /// Wall seconds of that work.
    pub worker_seconds: f64,
    pub workers: u64,
    /// Seconds between runs of this kind of work.
    pub frequency: u64,
}

/// Upserts the node's row (name and groups are kept from the first
/// insert, as LibreNMS keeps them), then its queue rows.
pub async fn report_node(db: &Db, r: &NodeReport) -> Result<(), DbError> {
    let d = db.dialect();
    let mut st = Statement::new(
        "INSERT INTO `poller_cluster` (`node_id`, `poller_name`, `poller_version`, `poller_groups`, `last_report`, `master`) VALUES (",
    );
    st.values(
        d,
        [
            Val::text(&r.node_id),
            Val::text(&r.poller_name),
            Val::text(&r.poller_version),
            Val::text(&r.poller_groups),
            Val::Now,
            Val::Int(i64::from(r.master)),
        ],
    );
    st.push(")");
    st.push(&upsert_clause(
        d,
        &["node_id"],
        &["poller_version", "last_report", "master"],
    ));
    db.execute(&st).await?;

    let mut st = Statement::new("SELECT `id` FROM `poller_cluster` WHERE `node_id` = ");
    st.value(d, Val::text(&r.node_id));
    let Some(parent) = db.fetch(&st).await?.first().and_then(|row| row.u64("id")) else {
        return Ok(());
    };
    for q in &r.queues {
        let mut st = Statement::new(
            "INSERT INTO `poller_cluster_stats` (`parent_poller`, `poller_type`, `depth`, `devices`, `worker_seconds`, `workers`, `frequency`) VALUES (",
        );
        st.values(
            d,
            [
                Val::UInt(parent),
                Val::text(q.poller_type),
                Val::UInt(q.depth),
                Val::UInt(q.devices),
                Val::Float(q.worker_seconds),
                Val::UInt(q.workers),
                Val::UInt(q.frequency),
            ],
        );
        st.push(")");
        st.push(&upsert_clause(
            d,
            &["parent_poller", "poller_type"],
            &["depth", "devices", "worker_seconds", "workers", "frequency"],
        ));
        db.execute(&st).await?;
    }
    Ok(())
}

/// A `poller-wrapper.py` node's report after each run: its `pollers` row
/// (unique by name) with the devices it polled and the run's seconds. A
/// cron cluster's nodes write `pollers`, not `poller_cluster`, and
/// LibreNMS's validation fails when both kinds look active.
pub async fn report_wrapper_run(
    db: &Db,
    poller_name: &str,
    devices: u64,
    seconds: u64,
) -> Result<(), DbError> {
    let d = db.dialect();
    let mut st = Statement::new(
        "INSERT INTO `pollers` (`poller_name`, `last_polled`, `devices`, `time_taken`) VALUES (",
    );
    st.values(
        d,
        [
            Val::text(poller_name),
            Val::Now,
            Val::UInt(devices),
            Val::UInt(seconds),
        ],
    );
    st.push(")");
    st.push(&upsert_clause(
        d,
        &["poller_name"],
        &["last_polled", "devices", "time_taken"],
    ));
    db.execute(&st).await?;
    Ok(())
}

/// The per-node settings an operator set in this node's `poller_cluster`
/// row (LibreNMS's Poller settings page): every non-NULL column wins over
/// the global value, read once at start (`ServiceConfig.load_poller_config`).
#[derive(Debug, Clone, Default)]
pub struct NodeOverrides {
    pub poller_name: Option<String>,
    pub poller_groups: Option<String>,
    pub poller_enabled: Option<bool>,
    pub poller_frequency: Option<u32>,
    pub poller_workers: Option<u32>,
    pub poller_down_retry: Option<u32>,
    pub discovery_enabled: Option<bool>,
    pub discovery_frequency: Option<u32>,
    pub services_enabled: Option<bool>,
    pub services_frequency: Option<u32>,
    pub billing_enabled: Option<bool>,
    pub billing_frequency: Option<u32>,
    pub billing_calculate_frequency: Option<u32>,
    pub alerting_enabled: Option<bool>,
    pub alerting_frequency: Option<u32>,
    pub ping_enabled: Option<bool>,
    pub ping_frequency: Option<u32>,
}

impl NodeOverrides {
    pub fn apply(&self, s: &mut crate::config::Settings) {
        if let Some(v) = &self.poller_name {
            s.distributed_poller_name = v.clone();
        }
        if let Some(v) = &self.poller_groups {
            // LibreNMS's parse_group: an unparsable list is group 0.
            let parsed: Result<Vec<i64>, _> = v.split(',').map(|g| g.trim().parse()).collect();
            s.poller.groups = match parsed {
                Ok(mut g) if !g.is_empty() => {
                    g.sort_unstable();
                    g.dedup();
                    g
                }
                _ => vec![0],
            };
        }
        let d = &mut s.dispatcher;
        let set_bool = |t: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *t = v;
            }
        };
        let set_u32 = |t: &mut u32, v: Option<u32>| {
            if let Some(v) = v.filter(|v| *v > 0) {
                *t = v;
            }
        };
        set_bool(&mut d.poller.enabled, self.poller_enabled);
        set_u32(&mut s.poller.frequency, self.poller_frequency);
        set_u32(&mut s.poller.workers, self.poller_workers);
        set_u32(&mut s.poller.down_retry, self.poller_down_retry);
        set_bool(&mut d.discovery.enabled, self.discovery_enabled);
        set_u32(&mut d.discovery.frequency, self.discovery_frequency);
        set_bool(&mut d.services.enabled, self.services_enabled);
        set_u32(&mut d.services.frequency, self.services_frequency);
        set_bool(&mut d.billing.enabled, self.billing_enabled);
        set_u32(&mut d.billing.frequency, self.billing_frequency);
        set_u32(&mut d.billing_calculate, self.billing_calculate_frequency);
        set_bool(&mut d.alerting.enabled, self.alerting_enabled);
        set_u32(&mut d.alerting.frequency, self.alerting_frequency);
        set_bool(&mut d.ping.enabled, self.ping_enabled);
        set_u32(&mut d.ping.frequency, self.ping_frequency);
    }
}

/// This node's overrides, None when it has no `poller_cluster` row yet.
pub async fn node_overrides(db: &Db, node_id: &str) -> Result<Option<NodeOverrides>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new("SELECT * FROM `poller_cluster` WHERE `node_id` = ");
    st.value(d, Val::text(node_id));
    let rows = db.fetch(&st).await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let flag = |c: &str| r.i64(c).map(|v| v != 0);
    let num = |c: &str| r.i64(c).and_then(|v| u32::try_from(v).ok());
    Ok(Some(NodeOverrides {
        poller_name: r.string("poller_name").filter(|n| !n.is_empty()),
        poller_groups: r.string("poller_groups"),
        poller_enabled: flag("poller_enabled"),
        poller_frequency: num("poller_frequency"),
        poller_workers: num("poller_workers"),
        poller_down_retry: num("poller_down_retry"),
        discovery_enabled: flag("discovery_enabled"),
        discovery_frequency: num("discovery_frequency"),
        services_enabled: flag("services_enabled"),
        services_frequency: num("services_frequency"),
        billing_enabled: flag("billing_enabled"),
        billing_frequency: num("billing_frequency"),
        billing_calculate_frequency: num("billing_calculate_frequency"),
        alerting_enabled: flag("alerting_enabled"),
        alerting_frequency: num("alerting_frequency"),
        ping_enabled: flag("ping_enabled"),
        ping_frequency: num("ping_frequency"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, resolve, settings_defaults};

    #[test]
    fn a_nodes_poller_cluster_overrides_win_as_librenms_reads_them() {
        let mut s = resolve(&[], settings_defaults(Mode::Librenms)).unwrap();
        s.poller.groups = vec![4];
        let o = NodeOverrides {
            poller_name: Some("poll-02".into()),
            poller_groups: Some("3, 1,3".into()),
            poller_enabled: Some(false),
            poller_frequency: Some(60),
            poller_down_retry: Some(30),
            ping_enabled: Some(true),
            discovery_frequency: Some(3600),
            ..NodeOverrides::default()
        };
        o.apply(&mut s);
        assert_eq!(s.distributed_poller_name, "poll-02");
        assert_eq!(s.poller.groups, [1, 3]);
        assert!(!s.dispatcher.poller.dispatched());
        assert_eq!((s.poller.frequency, s.poller.down_retry), (60, 30));
        assert!(s.dispatcher.ping.dispatched());
        assert_eq!(s.dispatcher.discovery.frequency, 3600);
        // Unset columns leave the global values.
        assert_eq!(s.dispatcher.services.frequency, 300);
        // An empty or unreadable group list is group 0, as in LibreNMS.
        for bad in ["", "a,b"] {
            let mut s = resolve(&[], settings_defaults(Mode::Librenms)).unwrap();
            s.poller.groups = vec![4];
            NodeOverrides {
                poller_groups: Some(bad.into()),
                ..NodeOverrides::default()
            }
            .apply(&mut s);
            assert_eq!(s.poller.groups, [0], "{bad:?}");
        }
    }

    #[test]
    fn schedule_type_decides_as_librenms_service_does() {
        let mut s = resolve(&[], settings_defaults(Mode::Librenms)).unwrap();
        let d = &mut s.dispatcher;
        // legacy: the enable flag; ping is off by default.
        assert!(d.poller.dispatched() && d.discovery.dispatched());
        assert!(!d.ping.dispatched());
        d.ping.schedule = "dispatcher".into();
        assert!(d.ping.dispatched());
        d.poller.schedule = "cron".into();
        assert!(!d.poller.dispatched());
    }
}
