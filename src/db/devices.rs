//! The `devices` table: loading devices, LibreNMS's due rule, and the
//! embedded store's `device add|list|remove`.

use super::{Db, DbError, Dialect, Row, Statement, Val};
use crate::device::Device;
use crate::secret::Secret;

const PLAIN_COLUMNS: &[&str] = &[
    "device_id",
    "hostname",
    "sysName",
    "overwrite_ip",
    "ip",
    "community",
    "authlevel",
    "authname",
    "authpass",
    "authalgo",
    "cryptopass",
    "cryptoalgo",
    "snmpver",
    "port",
    "transport",
    "timeout",
    "retries",
    "snmp_disable",
    "sysObjectID",
    "sysDescr",
    "os",
    "hardware",
    "version",
    "status",
    "status_reason",
    "disabled",
    "ignore",
    "uptime",
    "last_polled_timetaken",
    "last_ping_timetaken",
    "poller_group",
    "port_association_mode",
];

const TIME_COLUMNS: &[&str] = &["inserted", "last_polled", "last_discovered", "last_ping"];

/// The SELECT list of a device: time columns as Unix seconds.
fn select_list(d: Dialect) -> String {
    PLAIN_COLUMNS
        .iter()
        .map(|c| format!("`{c}`"))
        .chain(
            TIME_COLUMNS
                .iter()
                .map(|c| format!("{} AS `{c}`", d.unix(&format!("`{c}`")))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `devices` row as ironpoll's [`Device`]; odd values become what
/// LibreNMS would make of them, never an error.
pub fn device_from_row(r: &Row) -> Device {
    let s = |c: &str| r.string(c);
    let secret = |c: &str| r.string(c).map(Secret::from);
    let flag = |c: &str| r.i64(c).unwrap_or(0) != 0;
    Device {
        device_id: r.u64("device_id").unwrap_or(0) as u32,
        hostname: s("hostname").unwrap_or_default(),
        sys_name: s("sysName"),
        overwrite_ip: s("overwrite_ip"),
        ip: match r.get("ip") {
            crate::db::Val::Bytes(b) => Some(b.clone()),
            crate::db::Val::Text(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        },
        community: secret("community"),
        authlevel: s("authlevel"),
        authname: s("authname"),
        authpass: secret("authpass"),
        authalgo: s("authalgo"),
        cryptopass: secret("cryptopass"),
        cryptoalgo: s("cryptoalgo"),
        snmpver: s("snmpver").unwrap_or_else(|| "v2c".into()),
        port: r.i64("port").unwrap_or(161),
        transport: s("transport").unwrap_or_else(|| "udp".into()),
        timeout: r.i64("timeout"),
        retries: r.i64("retries"),
        snmp_disable: flag("snmp_disable"),
        sys_object_id: s("sysObjectID"),
        sys_descr: s("sysDescr"),
        os: s("os"),
        hardware: s("hardware"),
        version: s("version"),
        status: flag("status"),
        status_reason: s("status_reason").unwrap_or_default(),
        disabled: flag("disabled"),
        ignore: flag("ignore"),
        uptime: r.i64("uptime"),
        inserted: r.i64("inserted"),
        last_polled: r.i64("last_polled"),
        last_polled_timetaken: r.f64("last_polled_timetaken"),
        last_discovered: r.i64("last_discovered"),
        last_ping: r.i64("last_ping"),
        last_ping_timetaken: r.f64("last_ping_timetaken"),
        poller_group: r.i64("poller_group").unwrap_or(0),
        port_association_mode: r.i64("port_association_mode").unwrap_or(1),
    }
}

fn in_list(st: &mut Statement, d: Dialect, ids: &[u32]) {
    st.push("(");
    st.values(d, ids.iter().map(|i| Val::from(*i)));
    st.push(")");
}

/// Devices by id, in id order.
pub async fn load(db: &Db, ids: &[u32]) -> Result<Vec<Device>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let d = db.dialect();
        let mut st = Statement::new(format!(
            "SELECT {} FROM `devices` WHERE `device_id` IN ",
            select_list(d)
        ));
        in_list(&mut st, d, chunk);
        st.push(" ORDER BY `device_id`");
        out.extend(db.fetch(&st).await?.iter().map(device_from_row));
    }
    Ok(out)
}

/// Devices matching `lnms device:poll`'s spec: an id, a hostname (`*`
/// wildcards allowed), `all`, `odd`, `even`, or `new` (never discovered).
pub async fn find(db: &Db, spec: &str) -> Result<Vec<Device>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new(format!("SELECT {} FROM `devices` WHERE ", select_list(d)));
    let spec = spec.trim();
    match spec {
        "all" => st.push("1 = 1"),
        "odd" => st.push("`device_id` % 2 = 1"),
        "even" => st.push("`device_id` % 2 = 0"),
        "new" => st.push("`last_discovered` IS NULL"),
        _ if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) => {
            st.push("`device_id` = ");
            st.value(d, Val::UInt(spec.parse().unwrap_or(0)))
        }
        _ if spec.contains('*') => {
            st.push("`hostname` LIKE ");
            st.value(d, Val::text(spec.replace('%', "\\%").replace('*', "%")))
        }
        _ => {
            st.push("`hostname` = ");
            st.value(d, Val::text(spec))
        }
    };
    st.push(" ORDER BY `device_id`");
    Ok(db.fetch(&st).await?.iter().map(device_from_row).collect())
}

/// Narrows a devices query to poller groups (None: every group).
fn and_in_groups(st: &mut Statement, d: Dialect, groups: Option<&[i64]>) {
    if let Some(groups) = groups {
        st.push(" AND `poller_group` IN (");
        st.values(d, groups.iter().map(|g| Val::Int(*g)));
        st.push(")");
    }
}

/// Enabled devices of the given groups (all groups with None), in id
/// order: what fast ping covers.
pub async fn enabled(db: &Db, groups: Option<&[i64]>) -> Result<Vec<Device>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new(format!(
        "SELECT {} FROM `devices` WHERE `disabled` = 0",
        select_list(d)
    ));
    and_in_groups(&mut st, d, groups);
    st.push(" ORDER BY `device_id`");
    Ok(db.fetch(&st).await?.iter().map(device_from_row).collect())
}

/// `device_relationships` as (parent, child) pairs.
pub async fn relationships(db: &Db) -> Result<Vec<(u32, u32)>, DbError> {
    let st =
        Statement::new("SELECT `parent_device_id`, `child_device_id` FROM `device_relationships`");
    Ok(db
        .fetch(&st)
        .await?
        .iter()
        .map(|r| {
            (
                r.u64("parent_device_id").unwrap_or(0) as u32,
                r.u64("child_device_id").unwrap_or(0) as u32,
            )
        })
        .collect())
}

/// A device LibreNMS's dispatcher would poll now.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub device_id: u32,
    pub status: bool,
    pub last_polled_timetaken: f64,
}

/// LibreNMS's due rule (the dispatcher's device query), on the database
/// clock: enabled devices of the given groups never polled, or polled at
/// least `frequency - 1` seconds plus their last poll's duration ago.
/// With `require_discovery`, devices neither discovered nor polled wait for
/// discovery, as in LibreNMS.
pub async fn due(
    db: &Db,
    frequency: u32,
    groups: Option<&[i64]>,
    require_discovery: bool,
) -> Result<Vec<Due>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new(format!(
        "SELECT `device_id`, `status`, COALESCE(`last_polled_timetaken`, 0) AS `taken` FROM `devices` \
         WHERE `disabled` = 0 AND (`last_polled` IS NULL OR {} <= {} - ",
        d.unix("`last_polled`"),
        d.unix_now()
    ));
    st.value(d, Val::Int(i64::from(frequency) - 1));
    st.push(" + COALESCE(`last_polled_timetaken`, 0))");
    if require_discovery {
        st.push(" AND NOT (`last_discovered` IS NULL AND `last_polled` IS NULL)");
    }
    and_in_groups(&mut st, d, groups);
    st.push(" ORDER BY `last_polled_timetaken` DESC");
    Ok(db
        .fetch(&st)
        .await?
        .iter()
        .map(|r| Due {
            device_id: r.u64("device_id").unwrap_or(0) as u32,
            status: r.i64("status").unwrap_or(0) != 0,
            last_polled_timetaken: r.f64("taken").unwrap_or(0.0),
        })
        .collect())
}

/// The devices a `poller-wrapper.py` node works in one step: every
/// enabled device of its groups (all with None), the slowest first, as
/// LibreNMS's `wrapper.py` selects them.
pub async fn wrapper_list(db: &Db, groups: Option<&[i64]>) -> Result<Vec<u32>, DbError> {
    let d = db.dialect();
    let mut st = Statement::new("SELECT `device_id` FROM `devices` WHERE `disabled` = 0");
    and_in_groups(&mut st, d, groups);
    st.push(" ORDER BY `last_polled_timetaken` DESC");
    Ok(db
        .fetch(&st)
        .await?
        .iter()
        .filter_map(|r| r.u64("device_id").and_then(|id| u32::try_from(id).ok()))
        .collect())
}

/// The columns of a new device (the embedded store's `device add`).
#[derive(Debug, Clone, Default)]
pub struct NewDevice {
    pub hostname: String,
    pub overwrite_ip: Option<String>,
    pub snmpver: String,
    pub community: Option<String>,
    pub authlevel: Option<String>,
    pub authname: Option<String>,
    pub authpass: Option<String>,
    pub authalgo: Option<String>,
    pub cryptopass: Option<String>,
    pub cryptoalgo: Option<String>,
    pub port: u16,
    pub transport: String,
    pub poller_group: i64,
    pub snmp_disable: bool,
}

/// Adds a device; returns its id. A hostname already present is an error,
/// as in LibreNMS.
pub async fn add(db: &Db, dev: &NewDevice) -> Result<u32, DbError> {
    let d = db.dialect();
    let mut exists = Statement::new("SELECT `device_id` FROM `devices` WHERE `hostname` = ");
    exists.value(d, Val::text(&dev.hostname));
    if let Some(row) = db.fetch(&exists).await?.first() {
        return Err(DbError::Query(format!(
            "a device named {} already exists (id {})",
            dev.hostname,
            row.u64("device_id").unwrap_or(0)
        )));
    }
    let cols = [
        "hostname",
        "overwrite_ip",
        "snmpver",
        "community",
        "authlevel",
        "authname",
        "authpass",
        "authalgo",
        "cryptopass",
        "cryptoalgo",
        "port",
        "transport",
        "poller_group",
        "snmp_disable",
        "status_reason",
        "display",
        "type",
    ];
    let vals = vec![
        Val::text(&dev.hostname),
        Val::opt_text(dev.overwrite_ip.clone()),
        Val::text(&dev.snmpver),
        Val::opt_text(dev.community.clone()),
        Val::opt_text(dev.authlevel.clone()),
        Val::opt_text(dev.authname.clone()),
        Val::opt_text(dev.authpass.clone()),
        Val::opt_text(dev.authalgo.clone()),
        Val::opt_text(dev.cryptopass.clone()),
        Val::opt_text(dev.cryptoalgo.clone()),
        Val::from(u32::from(dev.port)),
        Val::text(&dev.transport),
        Val::Int(dev.poller_group),
        Val::from(dev.snmp_disable),
        Val::text(""),
        Val::text(""),
        Val::text(""),
    ];
    let mut st = Statement::new(format!(
        "INSERT INTO `devices` ({}) VALUES (",
        cols.iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    st.values(d, vals);
    st.push(")");
    let id = db.insert(&st).await? as u32;
    let mut ev = Statement::new(
        "INSERT INTO `eventlog` (`device_id`, `datetime`, `message`, `type`, `severity`) VALUES (",
    );
    ev.values(
        d,
        [
            Val::from(id),
            Val::Now,
            Val::text(format!("Device {} has been created", dev.hostname)),
            Val::text("system"),
            Val::Int(3),
        ],
    );
    ev.push(")");
    db.execute(&ev).await?;
    Ok(id)
}

/// Tables that hold rows of a device, deleted with it.
const DEVICE_TABLES: &[&str] = &[
    "devices_attribs",
    "device_outages",
    "device_stats",
    "device_graphs",
    "availability",
    "eventlog",
];

/// Removes a device and everything ironpoll stored for it.
pub async fn remove(db: &Db, device_id: u32) -> Result<bool, DbError> {
    let d = db.dialect();
    let mut stmts = Vec::new();
    let mut stats = Statement::new(
        "DELETE FROM `ports_statistics` WHERE `port_id` IN (SELECT `port_id` FROM `ports` WHERE `device_id` = ",
    );
    stats.value(d, Val::from(device_id)).push(")");
    stmts.push(stats);
    for table in ["ports"].iter().chain(DEVICE_TABLES) {
        let mut st = Statement::new(format!("DELETE FROM `{table}` WHERE `device_id` = "));
        st.value(d, Val::from(device_id));
        stmts.push(st);
    }
    let mut rel = Statement::new("DELETE FROM `device_relationships` WHERE `parent_device_id` = ");
    rel.value(d, Val::from(device_id))
        .push(" OR `child_device_id` = ")
        .value(d, Val::from(device_id));
    stmts.push(rel);
    let mut dev = Statement::new("DELETE FROM `devices` WHERE `device_id` = ");
    dev.value(d, Val::from(device_id));
    // Count the device row only: the last statement.
    let before = db
        .fetch(&{
            let mut s = Statement::new("SELECT `device_id` FROM `devices` WHERE `device_id` = ");
            s.value(d, Val::from(device_id));
            s
        })
        .await?;
    stmts.push(dev);
    db.transaction(&stmts).await?;
    Ok(!before.is_empty())
}
