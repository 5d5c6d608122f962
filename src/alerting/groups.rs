//! A device's dynamic device groups after its poll
//! (`UpdateDeviceGroupsAction`): each dynamic group's rules asked whether
//! the device is in it now, and `device_group_device` brought in line.
//! Static groups keep the device if they have it. A group whose rules make
//! broken SQL does not have the device (logged), as in LibreNMS.

use super::{Macros, QueryBuilder};
use crate::db::{Db, DbError, Statement, Val};

/// What changed in the device's membership.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupChanges {
    pub attached: Vec<u64>,
    pub detached: Vec<u64>,
}

/// Which of `ids` a dynamic group's rules take (Laravel's `->where(
/// 'devices.device_id', $id)->exists()` for each, asked once for all).
async fn taken(db: &Db, macros: &Macros, name: &str, rules: &str, ids: &[u32]) -> Vec<u32> {
    let query = match QueryBuilder::from_json(rules, macros).to_query() {
        Ok(Some(q)) => q,
        Ok(None) => return Vec::new(),
        Err(e) => {
            tracing::error!(group = name, error = %e, "device group has invalid rules");
            return Vec::new();
        }
    };
    let mut st = Statement::new(query.devices_among(ids.len()));
    st.args = query.bindings.iter().map(Val::from).collect();
    st.args.extend(ids.iter().map(|i| Val::from(*i)));
    match db.fetch_emulated(&st).await {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.u64("device_id").map(|d| d as u32))
            .collect(),
        Err(e) => {
            tracing::error!(group = name, error = %e, "device group generates an invalid query");
            Vec::new()
        }
    }
}

/// Re-evaluates a batch of devices' groups (each dynamic group asked once
/// for the batch) and syncs their memberships.
pub async fn update_for_devices(
    db: &Db,
    macros: &Macros,
    ids: &[u32],
) -> Result<Vec<(u32, GroupChanges)>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let groups = db
        .fetch(&Statement::new(
            "SELECT `id`, `name`, `type`, `rules` FROM `device_groups` ORDER BY `id`",
        ))
        .await?;
    let mut st = Statement::new(
        "SELECT `device_group_id`, `device_id` FROM `device_group_device` WHERE `device_id` IN (",
    );
    st.values(db.dialect(), ids.iter().map(|i| Val::from(*i)))
        .push(")");
    let mut current: Vec<(u64, u32)> = db
        .fetch_emulated(&st)
        .await?
        .iter()
        .filter_map(|r| Some((r.u64("device_group_id")?, r.u64("device_id")? as u32)))
        .collect();
    current.sort_unstable();
    let mut wanted: Vec<(u64, u32)> = Vec::new();
    for g in &groups {
        let id = g.u64("id").unwrap_or(0);
        if g.string("type").as_deref() == Some("dynamic") {
            let name = g.string("name").unwrap_or_default();
            let rules = g.string("rules").unwrap_or_default();
            for d in taken(db, macros, &name, &rules, ids).await {
                wanted.push((id, d));
            }
        } else {
            // A static group keeps the devices it has.
            wanted.extend(current.iter().filter(|(g, _)| *g == id).copied());
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let mut out: Vec<(u32, GroupChanges)> =
        ids.iter().map(|i| (*i, GroupChanges::default())).collect();
    let mut statements = Vec::new();
    for (group, device) in current.iter().filter(|m| wanted.binary_search(m).is_err()) {
        let mut st = Statement::new(
            "DELETE FROM `device_group_device` WHERE `device_group_id` = ? AND `device_id` = ?",
        );
        st.args = vec![Val::UInt(*group), Val::from(*device)];
        statements.push(st);
        if let Some((_, c)) = out.iter_mut().find(|(d, _)| d == device) {
            c.detached.push(*group);
        }
    }
    for (group, device) in wanted.iter().filter(|m| current.binary_search(m).is_err()) {
        let mut st = Statement::new(
            "INSERT INTO `device_group_device` (`device_group_id`, `device_id`) VALUES (?, ?)",
        );
        st.args = vec![Val::UInt(*group), Val::from(*device)];
        statements.push(st);
        if let Some((_, c)) = out.iter_mut().find(|(d, _)| d == device) {
            c.attached.push(*group);
        }
    }
    if !statements.is_empty() {
        db.transaction(&statements).await?;
    }
    Ok(out)
}
