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
