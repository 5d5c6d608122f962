//! Whether a device is under maintenance now (`DeviceMaintenanceCache`,
//! `AlertSchedule::isActive()`): a schedule mapped to the device, to its
//! location or to one of its groups, between its start and end, and for a
//! recurring one inside its daily window (which may span midnight) on one
//! of its days. The schedule's behaviour says what alerting does then.
//!
//! LibreNMS stores the times in UTC and compares the day of the week in
//! the web server's time zone; ironpoll takes both in UTC.

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

const ACTIVE_SCHEDULES: &str = "SELECT s.`schedule_id`, s.`behavior` FROM `alert_schedule` s \
    WHERE s.`start` <= UTC_TIMESTAMP() AND s.`end` >= UTC_TIMESTAMP() \
    AND (s.`recurring` = 0 OR (s.`recurring` = 1 \
      AND ((TIME(s.`start`) < TIME(s.`end`) AND TIME(s.`start`) <= TIME(UTC_TIMESTAMP()) AND TIME(s.`end`) > TIME(UTC_TIMESTAMP())) \
        OR (TIME(s.`start`) > TIME(s.`end`) AND (TIME(s.`start`) <= TIME(UTC_TIMESTAMP()) OR TIME(s.`end`) > TIME(UTC_TIMESTAMP())))) \
      AND (s.`recurring_day` LIKE CONCAT('%', WEEKDAY(UTC_TIMESTAMP()) + 1, '%') OR s.`recurring_day` IS NULL))) \
    AND EXISTS (SELECT 1 FROM `alert_schedulables` a WHERE a.`schedule_id` = s.`schedule_id` AND ( \
      (a.`alert_schedulable_type` = 'device' AND a.`alert_schedulable_id` = ?) \
      OR (a.`alert_schedulable_type` = 'location' AND a.`alert_schedulable_id` IN \
          (SELECT d.`location_id` FROM `devices` d JOIN `locations` l ON l.`id` = d.`location_id` WHERE d.`device_id` = ?)) \
      OR (a.`alert_schedulable_type` = 'device_group' AND a.`alert_schedulable_id` IN \
          (SELECT gd.`device_group_id` FROM `device_group_device` gd JOIN `device_groups` g ON g.`id` = gd.`device_group_id` WHERE gd.`device_id` = ?)))) \
    ORDER BY s.`schedule_id`";

/// The device's maintenance status now: the last active schedule's.
pub async fn status(db: &Db, device_id: u32) -> Result<Status, DbError> {
    let mut st = Statement::new(ACTIVE_SCHEDULES);
    st.args = vec![Val::from(device_id); 3];
    let rows = db.fetch(&st).await?;
    Ok(rows.last().map_or(Status::None, |r| {
        Status::from_behavior(r.i64("behavior").unwrap_or(0))
    }))
}
