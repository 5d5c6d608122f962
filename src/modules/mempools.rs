//! `mempools`: memory pools discovery stored, from their OIDs (LibreNMS
//! `LibreNMS/Modules/Mempools.php`, `app/Models/Mempool.php`): used, free,
//! total and percent filled from whatever the pool's OIDs give, and on
//! hosts with buffers and cache pools, the system pool's "available"
//! memory.

use futures_util::future::BoxFuture;
use serde_json::json;

use super::stored_oids::{self, Print};
use super::{ModuleError, Poll};
use crate::db::Row;
use crate::db::value::{coerce, php_of};
use crate::librenms::number::{self, NumberError};
use crate::librenms::php::{Php, changed};
use crate::rrd::{Datum, DsType, RrdDef, ds};

/// `mempool-<type>-<class>-<index>.rrd`.
pub static MEMPOOL: RrdDef = RrdDef {
    name: "mempool",
    datasets: &[
        ds("used", DsType::Gauge, Some(0.0), None),
        ds("free", DsType::Gauge, Some(0.0), None),
    ],
};

const OID_COLUMNS: [&str; 4] = [
    "mempool_perc_oid",
    "mempool_used_oid",
    "mempool_free_oid",
    "mempool_total_oid",
];

/// A pool as the poll holds it: its row and its usage, as PHP's model.
struct Pool {
    row: Row,
    total: Php,
    used: Php,
    free: Php,
    perc: Php,
}

impl Pool {
    fn new(row: Row) -> Pool {
        let get = |c: &str| php_of(row.get(c));
        Pool {
            total: get("mempool_total"),
            used: get("mempool_used"),
            free: get("mempool_free"),
            perc: get("mempool_perc"),
            row,
        }
    }

    fn class(&self) -> String {
        self.row.string("mempool_class").unwrap_or_default()
    }

    /// `Mempool::fillUsage`: a failure leaves the pool as it was.
    fn fill_usage(
        &mut self,
        used: &Php,
        total: &Php,
        free: &Php,
        percent: &Php,
        multiplier: Option<f64>,
    ) -> Result<(), NumberError> {
        let precision = self.row.f64("mempool_precision").unwrap_or(0.0);
        let multiplier = multiplier.unwrap_or(if precision != 0.0 { precision } else { 1.0 });
        let total = match number::correct_integer_overflow(total, None)? {
            Some(t) => Some(t as f64),
            None => {
                let stored = as_f64(&self.total);
                (stored != 0.0).then(|| stored / multiplier)
            }
        };
        let max = total.map(|t| t as i64);
        let used = number::correct_integer_overflow(used, max)?.map(|v| v as f64);
        let free = number::correct_integer_overflow(free, max)?.map(|v| v as f64);
        let [t, u, f, p] = number::fill_missing_ratio(total, used, free, percent, 0, multiplier)?;
        self.total = Php::Float(t);
        self.used = Php::Float(u);
        self.free = Php::Float(f);
        // `setMempoolPercAttribute`: rounded.
        self.perc = Php::Float(crate::librenms::php::round(p, 0));
        Ok(())
    }
}

fn as_f64(v: &Php) -> f64 {
    match number::cast(v) {
        Php::Int(i) => i as f64,
        Php::Float(f) => f,
        _ => 0.0,
    }
}

pub fn poll<'p, 'a>(p: &'p mut Poll<'a>) -> BoxFuture<'p, Result<(), ModuleError>> {
    Box::pin(run(p))
}

async fn run(p: &mut Poll<'_>) -> Result<(), ModuleError> {
    let rows = p.store.rows("mempools", p.device_id()).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let snmp = p.snmp()?;
    let oids: Vec<String> = rows
        .iter()
        .flat_map(|r| OID_COLUMNS.iter().filter_map(|c| r.string(c)))
        .filter(|o| !o.is_empty())
        .collect();
    let refs: Vec<&str> = oids.iter().map(String::as_str).collect();
    let fetched = stored_oids::get(snmp, &refs).await;
    for problem in &fetched.problems {
        p.problem("mempools", problem);
    }
    let mut pools: Vec<Pool> = rows.into_iter().map(Pool::new).collect();
    for pool in &mut pools {
        let value = |c: &str| {
            pool.row
                .string(c)
                .filter(|o| !o.is_empty())
                .and_then(|o| fetched.text(&o, Print::Plain))
                .map_or(Php::Null, Php::Str)
        };
        let (used, total, free, perc) = (
            value("mempool_used_oid"),
            value("mempool_total_oid"),
            value("mempool_free_oid"),
            value("mempool_perc_oid"),
        );
        if let Err(e) = pool.fill_usage(&used, &total, &free, &perc, None) {
            let index = pool.row.string("mempool_index").unwrap_or_default();
            p.problem("mempools", format!("pool {index}: {e:?}"));
        }
    }
    calculate_available(&mut pools);

    let mut shown = serde_json::Map::new();
    for pool in &pools {
        let class = pool.class();
        if class.is_empty() {
            // LibreNMS skips a pool without a class.
            continue;
        }
        let id = pool.row.u64("mempool_id").unwrap_or(0);
        let kind = pool.row.string("mempool_type").unwrap_or_default();
        let index = pool.row.string("mempool_index").unwrap_or_default();
        // Eloquent saves the columns that changed.
        let mut cols = Vec::new();
        for (column, value) in [
            ("mempool_total", &pool.total),
            ("mempool_used", &pool.used),
            ("mempool_free", &pool.free),
            ("mempool_perc", &pool.perc),
        ] {
            if changed(&php_of(pool.row.get(column)), value) {
                cols.push((column, coerce("mempools", column, value)));
            }
        }
        p.changes.update("mempools", "mempool_id", id, cols);
        p.rrd(
            &["mempool", &kind, &class, &index],
            &MEMPOOL,
            vec![datum(&pool.used), datum(&pool.free)],
        );
        shown.insert(
            format!("{kind}.{index}"),
            json!({"class": class, "perc": pool.perc.to_string(), "used": pool.used.to_string(), "total": pool.total.to_string()}),
        );
    }
    p.output.insert("mempools".into(), shown.into());
    Ok(())
}

fn datum(v: &Php) -> Datum {
    match v {
        Php::Int(i) => Datum::Int(*i),
        Php::Float(f) => Datum::Float(*f),
        Php::Str(s) => Datum::parse(s),
        Php::Null => Datum::Unknown,
    }
}

/// `calculateAvailable`: with more than two pools, one `system` pool and
/// at most one `buffers` and one `cached` pool, the system pool's used
/// memory leaves out buffers and cache.
fn calculate_available(pools: &mut [Pool]) {
    if pools.len() <= 2 {
        return;
    }
    let (mut system, mut buffers, mut cached) = (None, None, None);
    for (i, pool) in pools.iter().enumerate() {
        let slot = match pool.class().as_str() {
            "system" => &mut system,
            "buffers" => &mut buffers,
            "cached" => &mut cached,
            _ => continue,
        };
        if slot.is_some() {
            return;
        }
        *slot = Some(i);
    }
    let Some(system) = system else {
        return;
    };
    let used_of = |i: Option<usize>| i.map_or(0.0, |i| as_f64(&pools[i].used));
    let available_used = as_f64(&pools[system].used) - used_of(buffers) - used_of(cached);
    if available_used >= 0.0 {
        let total = pools[system].total.clone();
        let _ = pools[system].fill_usage(
            &Php::Float(available_used),
            &total,
            &Php::Null,
            &Php::Null,
            Some(1.0),
        );
    }
}
