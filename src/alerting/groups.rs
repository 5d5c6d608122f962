//! A device's dynamic device groups after its poll
//! (`UpdateDeviceGroupsAction`): each dynamic group's rules asked whether
//! the device is in it now, and `device_group_device` brought in line.
//! Static groups keep the device if they have it. A group whose rules make
//! broken SQL does not have the device (logged), as in LibreNMS.

use serde_json::Value;

use super::{Macros, QueryBuilder};
use crate::db::{Db, DbError, Statement, Val};

/// What changed in the device's membership.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupChanges {
    pub attached: Vec<u64>,
    pub detached: Vec<u64>,
}

fn bind(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Int(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(Val::Int)
            .or_else(|| n.as_u64().map(Val::UInt))
            .unwrap_or_else(|| Val::Float(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Val::Text(s.clone()),
        other => Val::Text(other.to_string()),
    }
}

/// Whether a dynamic group's rules take the device.
async fn takes(db: &Db, macros: &Macros, name: &str, rules: &str, device_id: u32) -> bool {
    let query = match QueryBuilder::from_json(rules, macros).to_query() {
        Ok(Some(q)) => q,
        Ok(None) => return false,
        Err(e) => {
            tracing::error!(group = name, error = %e, "device group has invalid rules");
            return false;
        }
    };
    let mut st = Statement::new(query.exists_for_device());
    st.args = query.bindings.iter().map(bind).collect();
    st.args.push(Val::from(device_id));
    match db.fetch_emulated(&st).await {
        Ok(rows) => rows.first().and_then(|r| r.i64("exists")).unwrap_or(0) != 0,
        Err(e) => {
            tracing::error!(group = name, error = %e, "device group generates an invalid query");
            false
        }
    }
}

/// Re-evaluates the device's groups and syncs its memberships.
pub async fn update_for_device(
    db: &Db,
    macros: &Macros,
    device_id: u32,
) -> Result<GroupChanges, DbError> {
    let groups = db
        .fetch(&Statement::new(
            "SELECT `id`, `name`, `type`, `rules` FROM `device_groups` ORDER BY `id`",
        ))
        .await?;
    let mut st =
        Statement::new("SELECT `device_group_id` FROM `device_group_device` WHERE `device_id` = ?");
    st.args.push(Val::from(device_id));
    let current: Vec<u64> = db
        .fetch(&st)
        .await?
        .iter()
        .filter_map(|r| r.u64("device_group_id"))
        .collect();
    let mut wanted: Vec<u64> = Vec::new();
    for g in &groups {
        let id = g.u64("id").unwrap_or(0);
        let member = if g.string("type").as_deref() == Some("dynamic") {
            let name = g.string("name").unwrap_or_default();
            let rules = g.string("rules").unwrap_or_default();
            takes(db, macros, &name, &rules, device_id).await
        } else {
            current.contains(&id)
        };
        if member {
            wanted.push(id);
        }
    }
    let changes = GroupChanges {
        attached: wanted
            .iter()
            .filter(|g| !current.contains(g))
            .copied()
            .collect(),
        detached: current
            .iter()
            .filter(|g| !wanted.contains(g))
            .copied()
            .collect(),
    };
    let mut statements = Vec::new();
    if !changes.detached.is_empty() {
        let mut st = Statement::new(
            "DELETE FROM `device_group_device` WHERE `device_id` = ? AND `device_group_id` IN (",
        );
        st.args.push(Val::from(device_id));
        st.push(&vec!["?"; changes.detached.len()].join(", "));
        st.push(")");
        st.args
            .extend(changes.detached.iter().map(|g| Val::UInt(*g)));
        statements.push(st);
    }
    for g in &changes.attached {
        let mut st = Statement::new(
            "INSERT INTO `device_group_device` (`device_group_id`, `device_id`) VALUES (?, ?)",
        );
        st.args = vec![Val::UInt(*g), Val::from(device_id)];
        statements.push(st);
    }
    if !statements.is_empty() {
        db.transaction(&statements).await?;
    }
    Ok(changes)
}
