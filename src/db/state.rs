//! What a poll needs to know about a device before it starts: its
//! attributes, its outages, its ping statistics and graphs. Loaded for
//! many devices at once, a handful of queries per batch. Ports rows are
//! read by the ports module itself, once it has walked the agent
//! ([`crate::modules::PollStore`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::value::php_of;
use super::{Db, DbError, Row, Statement, Val, schema};
use crate::device::Attribs;
use crate::librenms::php::Php;

/// A `ports` row joined with its `ports_statistics` row, as PHP holds it.
///
/// Values sit in the order of [`port_columns`], so a row costs a vector
/// of values rather than a map of names: the rows of every port of the
/// devices in flight are held at once.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRow {
    pub port_id: u32,
    pub device_id: u32,
    /// Whether the `ports_statistics` row exists.
    pub has_statistics: bool,
    values: Vec<Php>,
    /// Values of names that are not columns (none in LibreNMS's poller,
    /// kept so that setting one is never lost).
    extra: Vec<(Arc<str>, Php)>,
}

/// The columns a [`PortRow`] holds, in the order [`load_ports`] selects
/// them: `ports`, `ports_statistics_port_id`, then `ports_statistics`.
#[derive(Debug)]
pub struct PortColumns {
    names: Vec<&'static str>,
    index: FxHashMap<&'static str, usize>,
}

pub fn port_columns() -> &'static PortColumns {
    static COLUMNS: std::sync::OnceLock<PortColumns> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let ports = schema::table("ports").expect("ports table");
        let stats = schema::table("ports_statistics").expect("ports_statistics table");
        let mut names: Vec<&'static str> = ports.columns.iter().map(|c| c.name).collect();
        names.push("ports_statistics_port_id");
        names.extend(
            stats
                .columns
                .iter()
                .map(|c| c.name)
                .filter(|n| *n != "port_id"),
        );
        let index = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        PortColumns { names, index }
    })
}

impl PortRow {
    /// A row with every column NULL (a port the poller is about to insert).
    pub fn new(port_id: u32, device_id: u32, has_statistics: bool) -> PortRow {
        PortRow {
            port_id,
            device_id,
            has_statistics,
            values: vec![Php::Null; port_columns().names.len()],
            extra: Vec::new(),
        }
    }

    pub fn get(&self, column: &str) -> &Php {
        static NULL: Php = Php::Null;
        match port_columns().index.get(column) {
            Some(&i) => &self.values[i],
            None => self
                .extra
                .iter()
                .find(|(n, _)| &**n == column)
                .map_or(&NULL, |(_, v)| v),
        }
    }

    pub fn set(&mut self, column: &str, value: Php) {
        match port_columns().index.get(column) {
            Some(&i) => self.values[i] = value,
            None => match self.extra.iter_mut().find(|(n, _)| &**n == column) {
                Some((_, v)) => *v = value,
                None => self.extra.push((Arc::from(column), value)),
            },
        }
    }

    /// Every column with its value.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Php)> {
        port_columns()
            .names
            .iter()
            .copied()
            .zip(&self.values)
            .chain(self.extra.iter().map(|(n, v)| (&**n, v)))
    }

    pub fn int(&self, column: &str) -> Option<i64> {
        match self.get(column) {
            Php::Null => None,
            v => Some(v.intval()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub id: u64,
    pub going_down: i64,
    pub up_again: Option<i64>,
}

/// The `device_stats` row (ping statistics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceStats {
    pub ping_rtt_last: Option<f64>,
    pub ping_rtt_prev: Option<f64>,
    pub ping_rtt_avg: Option<f64>,
    pub ping_loss_last: Option<f64>,
    pub ping_loss_prev: Option<f64>,
    pub ping_loss_avg: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceState {
    pub attribs: Attribs,
    /// Open outages and those that ended within the longest availability
    /// window.
    pub outages: Vec<Outage>,
    pub stats: Option<DeviceStats>,
    pub graphs: BTreeSet<String>,
}

/// What to load besides attributes.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// Load outages that ended at or after this Unix time (and open ones).
    pub outages_since: i64,
}

/// Loads the state of many devices.
pub async fn load(
    db: &Db,
    ids: &[u32],
    needs: Needs,
) -> Result<HashMap<u32, DeviceState>, DbError> {
    let mut out: HashMap<u32, DeviceState> =
        ids.iter().map(|i| (*i, DeviceState::default())).collect();
    for chunk in ids.chunks(1000) {
        load_chunk(db, chunk, needs, &mut out).await?;
    }
    Ok(out)
}

fn ids_clause(st: &mut Statement, db: &Db, column: &str, ids: &[u32]) {
    st.push(&format!("{column} IN ("));
    st.values(db.dialect(), ids.iter().map(|i| Val::from(*i)));
    st.push(")");
}

fn device_of(r: &Row) -> u32 {
    r.u64("device_id").unwrap_or(0) as u32
}

async fn load_chunk(
    db: &Db,
    ids: &[u32],
    needs: Needs,
    out: &mut HashMap<u32, DeviceState>,
) -> Result<(), DbError> {
    let mut st = Statement::new(
        "SELECT `device_id`, `attrib_type`, `attrib_value` FROM `devices_attribs` WHERE ",
    );
    ids_clause(&mut st, db, "`device_id`", ids);
    for r in db.fetch(&st).await? {
        if let (Some(state), Some(k), Some(v)) = (
            out.get_mut(&device_of(&r)),
            r.string("attrib_type"),
            r.string("attrib_value"),
        ) {
            state.attribs.0.insert(k, v);
        }
    }

    let mut st = Statement::new(
        "SELECT `id`, `device_id`, `going_down`, `up_again` FROM `device_outages` WHERE ",
    );
    ids_clause(&mut st, db, "`device_id`", ids);
    st.push(" AND (`up_again` IS NULL OR `up_again` >= ");
    st.value(db.dialect(), Val::Int(needs.outages_since));
    st.push(") ORDER BY `going_down`");
    for r in db.fetch(&st).await? {
        if let Some(state) = out.get_mut(&device_of(&r)) {
            state.outages.push(Outage {
                id: r.u64("id").unwrap_or(0),
                going_down: r.i64("going_down").unwrap_or(0),
                up_again: r.i64("up_again"),
            });
        }
    }

    let mut st = Statement::new(
        "SELECT `device_id`, `ping_rtt_last`, `ping_rtt_prev`, `ping_rtt_avg`, `ping_loss_last`, `ping_loss_prev`, `ping_loss_avg` FROM `device_stats` WHERE ",
    );
    ids_clause(&mut st, db, "`device_id`", ids);
    for r in db.fetch(&st).await? {
        if let Some(state) = out.get_mut(&device_of(&r)) {
            state.stats = Some(DeviceStats {
                ping_rtt_last: r.f64("ping_rtt_last"),
                ping_rtt_prev: r.f64("ping_rtt_prev"),
                ping_rtt_avg: r.f64("ping_rtt_avg"),
                ping_loss_last: r.f64("ping_loss_last"),
                ping_loss_prev: r.f64("ping_loss_prev"),
                ping_loss_avg: r.f64("ping_loss_avg"),
            });
        }
    }

    let mut st = Statement::new("SELECT `device_id`, `graph` FROM `device_graphs` WHERE ");
    ids_clause(&mut st, db, "`device_id`", ids);
    for r in db.fetch(&st).await? {
        if let (Some(state), Some(g)) = (out.get_mut(&device_of(&r)), r.string("graph")) {
            state.graphs.insert(g);
        }
    }
    Ok(())
}

/// Ports of the devices with their statistics, in port_id order (the order
/// LibreNMS builds its port maps in).
pub async fn load_ports(db: &Db, ids: &[u32]) -> Result<Vec<(u32, PortRow)>, DbError> {
    let cols: Vec<String> = port_columns()
        .names
        .iter()
        .map(|n| match *n {
            "ports_statistics_port_id" => "s.`port_id` AS `ports_statistics_port_id`".to_string(),
            n if schema::table("ports").is_some_and(|t| t.columns.iter().any(|c| c.name == n)) => {
                format!("p.`{n}`")
            }
            n => format!("s.`{n}`"),
        })
        .collect();
    let mut st = Statement::new(format!(
        "SELECT {} FROM `ports` p LEFT JOIN `ports_statistics` s ON s.`port_id` = p.`port_id` WHERE ",
        cols.join(", ")
    ));
    ids_clause(&mut st, db, "p.`device_id`", ids);
    st.push(" ORDER BY p.`port_id`");
    let rows = db.fetch(&st).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let port = PortRow {
                port_id: r.u64("port_id").unwrap_or(0) as u32,
                device_id: device_of(r),
                has_statistics: !r.get("ports_statistics_port_id").is_null(),
                // The SELECT lists the columns in port_columns() order.
                values: r.values().iter().map(php_of).collect(),
                extra: Vec::new(),
            };
            (port.device_id, port)
        })
        .collect())
}
