//! The queries of a LibreNMS dispatcher master (`LibreNMS/service.py` and
//! `queuemanager.py`), on the database clock, and the check a worker makes
//! after taking a device's lock.

use super::{Db, DbError, Statement, Val};

/// A row of the master's due query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub device_id: u32,
    pub group: i64,
    pub poll: bool,
    pub discover: bool,
}

/// `Service.fetch_immediate_device_list`: enabled devices due for a poll
/// or a discovery, never-discovered first, then the slowest.
/// `service_age` is how long this node's service has run (a device that
/// is up is not rediscovered before 1.25 times its last discovery took).
pub async fn due(
    db: &Db,
    poller_frequency: u32,
    discovery_frequency: u32,
    service_age: f64,
) -> Result<Vec<Due>, DbError> {
    let d = db.dialect();
    let poll_find = i64::from(poller_frequency) - 1;
    let discovery_find = i64::from(discovery_frequency) - 1;
    let mut st = Statement::new(
        "SELECT `device_id`, `poller_group`, \
         IF(last_discovered IS NULL AND last_polled IS NULL, 0, COALESCE(`last_polled` <= DATE_ADD(DATE_ADD(NOW(), INTERVAL -",
    );
    st.value(d, Val::Int(poll_find));
    st.push(
        " SECOND), INTERVAL COALESCE(`last_polled_timetaken`, 0) SECOND), 1)) AS `poll`, \
         IF(status=0, IF(last_discovered IS NULL, 1, 0), IF (",
    );
    st.value(d, Val::Float(service_age));
    st.push(
        " < `last_discovered_timetaken` * 1.25, 0, COALESCE(`last_discovered` <= DATE_ADD(DATE_ADD(NOW(), INTERVAL -",
    );
    st.value(d, Val::Int(discovery_find));
    st.push(
        " SECOND), INTERVAL COALESCE(`last_discovered_timetaken`, 0) SECOND), 1))) AS `discover` \
         FROM `devices` WHERE `disabled` = 0 AND ( `last_polled` IS NULL OR `last_discovered` IS NULL OR \
         `last_polled` <= DATE_ADD(DATE_ADD(NOW(), INTERVAL -",
    );
    st.value(d, Val::Int(poll_find));
    st.push(
        " SECOND), INTERVAL COALESCE(`last_polled_timetaken`, 0) SECOND) OR \
         `last_discovered` <= DATE_ADD(DATE_ADD(NOW(), INTERVAL -",
    );
    st.value(d, Val::Int(discovery_find));
    st.push(
        " SECOND), INTERVAL COALESCE(`last_discovered_timetaken`, 0) SECOND) ) \
         ORDER BY `last_discovered` IS NULL DESC, `last_polled_timetaken` DESC",
    );
    Ok(db
        .fetch(&st)
        .await?
        .iter()
        .filter_map(|r| {
            Some(Due {
                device_id: u32::try_from(r.u64("device_id")?).ok()?,
                group: r.i64("poller_group").unwrap_or(0),
                poll: r.i64("poll").unwrap_or(0) != 0,
                discover: r.i64("discover").unwrap_or(0) != 0,
            })
        })
        .collect())
}

/// Whether a device is still due for a poll, asked by a worker once it
/// holds the device's lock: a poll that another node finished since the
/// master queued the device (or since the master's read) makes it not due.
pub async fn still_due(db: &Db, device_id: u32, poller_frequency: u32) -> Result<bool, DbError> {
    let d = db.dialect();
    let mut st = Statement::new(
        "SELECT COUNT(*) AS `n` FROM `devices` WHERE `disabled` = 0 AND `device_id` = ",
    );
    st.value(d, Val::UInt(u64::from(device_id)));
    st.push(
        " AND NOT (last_discovered IS NULL AND last_polled IS NULL) AND (`last_polled` IS NULL OR \
         `last_polled` <= DATE_ADD(DATE_ADD(NOW(), INTERVAL -",
    );
    st.value(d, Val::Int(i64::from(poller_frequency) - 1));
    st.push(" SECOND), INTERVAL COALESCE(`last_polled_timetaken`, 0) SECOND))");
    Ok(db
        .fetch(&st)
        .await?
        .first()
        .and_then(|r| r.i64("n"))
        .unwrap_or(0)
        > 0)
}

/// `DiscoveryQueueManager.do_dispatch`: every enabled device, the
/// never-discovered first.
pub async fn discovery_all(db: &Db) -> Result<Vec<(u32, i64)>, DbError> {
    pairs(
        db,
        "SELECT `device_id`, `poller_group` FROM `devices` WHERE `disabled`=0 ORDER BY `last_discovered` IS NULL DESC",
    )
    .await
}

/// `ServicesQueueManager.do_dispatch`: devices with services.
pub async fn services_devices(db: &Db) -> Result<Vec<(u32, i64)>, DbError> {
    pairs(
        db,
        "SELECT DISTINCT(`device_id`), `poller_group` FROM `services` LEFT JOIN `devices` USING (`device_id`) WHERE `disabled`=0",
    )
    .await
}

/// `PingQueueManager.do_dispatch`: every poller group that has devices.
pub async fn device_groups(db: &Db) -> Result<Vec<i64>, DbError> {
    Ok(db
        .fetch(&Statement::new(
            "SELECT DISTINCT (`poller_group`) AS `g` FROM `devices`",
        ))
        .await?
        .iter()
        .filter_map(|r| r.i64("g"))
        .collect())
}

async fn pairs(db: &Db, sql: &str) -> Result<Vec<(u32, i64)>, DbError> {
    Ok(db
        .fetch(&Statement::new(sql))
        .await?
        .iter()
        .filter_map(|r| {
            Some((
                u32::try_from(r.u64("device_id")?).ok()?,
                r.i64("poller_group").unwrap_or(0),
            ))
        })
        .collect())
}
