//! Whether a device is under maintenance now (`DeviceMaintenanceCache`,
//! `AlertSchedule::isActive()`): a schedule mapped to the device, to its
//! location or to one of its groups, between its start and end, and for a
//! recurring one inside its daily window (which may span midnight) on one
//! of its days. The schedule's behaviour says what alerting does then.
//!
//! LibreNMS stores the times in UTC and compares them in UTC, and takes the
//! day of the week in its application time zone (PHP's `date.timezone`,
//! ironpoll's `php.timezone`; UTC when MariaDB does not know the name).

use rustc_hash::FxHashMap;

use crate::db::{Db, DbError, Statement, Val};

/// `MaintenanceStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    None,
    SkipAlerts,
    MuteAlerts,
    RunAlerts,
}

impl Status {
    /// `MaintenanceStatus::fromBehavior` (an unknown behaviour is none).
    fn from_behavior(b: i64) -> Status {
        match b {
            1 => Status::SkipAlerts,
            2 => Status::MuteAlerts,
            3 => Status::RunAlerts,
            _ => Status::None,
        }
    }
}

/// A schedule is active now (`AlertSchedule::isActive()`, in UTC).
const ACTIVE: &str = "s.`start` <= UTC_TIMESTAMP() AND s.`end` >= UTC_TIMESTAMP() \
    AND (s.`recurring` = 0 OR (s.`recurring` = 1 \
      AND ((TIME(s.`start`) < TIME(s.`end`) AND TIME(s.`start`) <= TIME(UTC_TIMESTAMP()) AND TIME(s.`end`) > TIME(UTC_TIMESTAMP())) \
        OR (TIME(s.`start`) > TIME(s.`end`) AND (TIME(s.`start`) <= TIME(UTC_TIMESTAMP()) OR TIME(s.`end`) > TIME(UTC_TIMESTAMP())))) \
      AND (s.`recurring_day` LIKE CONCAT('%', WEEKDAY(COALESCE(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', ?), UTC_TIMESTAMP())) + 1, '%') \
        OR s.`recurring_day` IS NULL)))";

/// Each device's maintenance status now: the last active schedule's that
/// names it, its location or one of its groups; devices under none are
/// left out.
pub async fn statuses(
    db: &Db,
    ids: &[u32],
    timezone: &str,
) -> Result<FxHashMap<u32, Status>, DbError> {
    let mut out = FxHashMap::default();
    if ids.is_empty() {
        return Ok(out);
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let mut st = Statement::new(format!(
        "SELECT x.`device_id`, s.`behavior` FROM `alert_schedule` s JOIN ( \
           SELECT a.`schedule_id`, d.`device_id` FROM `alert_schedulables` a JOIN `devices` d ON d.`device_id` = a.`alert_schedulable_id` \
             WHERE a.`alert_schedulable_type` = 'device' AND d.`device_id` IN ({marks}) \
           UNION ALL SELECT a.`schedule_id`, d.`device_id` FROM `alert_schedulables` a JOIN `locations` l ON l.`id` = a.`alert_schedulable_id` \
             JOIN `devices` d ON d.`location_id` = l.`id` WHERE a.`alert_schedulable_type` = 'location' AND d.`device_id` IN ({marks}) \
           UNION ALL SELECT a.`schedule_id`, gd.`device_id` FROM `alert_schedulables` a JOIN `device_groups` g ON g.`id` = a.`alert_schedulable_id` \
             JOIN `device_group_device` gd ON gd.`device_group_id` = g.`id` WHERE a.`alert_schedulable_type` = 'device_group' AND gd.`device_id` IN ({marks}) \
         ) x ON x.`schedule_id` = s.`schedule_id` WHERE {ACTIVE} ORDER BY s.`schedule_id`"
    ));
    for _ in 0..3 {
        st.args.extend(ids.iter().map(|i| Val::from(*i)));
    }
    st.args.push(Val::text(timezone));
    for r in db.fetch_emulated(&st).await? {
        let device = r.u64("device_id").unwrap_or(0) as u32;
        out.insert(
            device,
            Status::from_behavior(r.i64("behavior").unwrap_or(0)),
        );
    }
    Ok(out)
}
