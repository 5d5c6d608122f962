//! Who an alert is for (`AlertUtil::getContacts`), stored with its rows in
//! `alert_log.details` for LibreNMS's mail transport: the default address
//! alone (LibreNMS's default), or the devices' sysContact, the users who
//! may see the devices, ports or bills, and the admins and global readers.

use serde_json::Value;

use super::details::PhpRow;
use crate::config::AlertSettings;
use crate::db::{Db, Dialect, Statement, Val};
use crate::librenms::php::Php;

/// Addresses and names, in PHP's array order.
pub type Contacts = Vec<(String, String)>;

fn put(contacts: &mut Contacts, mail: String, name: String) {
    match contacts.iter_mut().find(|(m, _)| *m == mail) {
        Some(slot) => slot.1 = name,
        None => contacts.push((mail, name)),
    }
}

/// The contacts for a rule's rows. A lookup that fails costs the contacts
/// it would have found (logged), not the alert.
pub async fn for_rows(db: &Db, settings: &AlertSettings, rows: &[PhpRow]) -> Contacts {
    if rows.is_empty() {
        return Vec::new();
    }
    if settings.default_only {
        return settings
            .default_mail
            .iter()
            .map(|m| (m.clone(), String::new()))
            .collect();
    }
    let mut found: Contacts = Vec::new();
    let ids = |column: &str| -> Vec<Val> {
        let mut ids: Vec<Val> = Vec::new();
        for row in rows {
            if let Some((_, v)) = row.iter().find(|(c, _)| c == column)
                && Php::json_truthy(v)
            {
                let id = Val::Text(text(v));
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    };
    let devices = ids("device_id");
    let mut queries: Vec<Statement> = Vec::new();
    if settings.syscontact && !devices.is_empty() {
        queries.push(in_list(
            db.dialect(),
            "SELECT IF(COALESCE((SELECT a.`attrib_value` FROM `devices_attribs` a WHERE a.`device_id` = d.`device_id` \
             AND a.`attrib_type` = 'override_sysContact_bool' LIMIT 1), '') NOT IN ('', '0'), \
             (SELECT a.`attrib_value` FROM `devices_attribs` a WHERE a.`device_id` = d.`device_id` \
             AND a.`attrib_type` = 'override_sysContact_string' LIMIT 1), d.`sysContact`) AS `email`, '' AS `realname` \
             FROM `devices` d WHERE d.`device_id` IN (",
            &devices,
            ") ORDER BY d.`device_id`",
        ));
    }
    if settings.users {
        let ports = ids("port_id");
        let bills = ids("bill_id");
        let mut owned: Vec<(&str, &Vec<Val>)> = Vec::new();
        if !devices.is_empty() {
            owned.push((
                "u.`user_id` IN (SELECT `user_id` FROM `devices_perms` WHERE `device_id` IN ({}))",
                &devices,
            ));
            owned.push((
                "u.`user_id` IN (SELECT p.`user_id` FROM `devices_group_perms` p JOIN `device_group_device` g \
                 ON g.`device_group_id` = p.`device_group_id` WHERE g.`device_id` IN ({}))",
                &devices,
            ));
        }
        if !ports.is_empty() {
            owned.push((
                "u.`user_id` IN (SELECT `user_id` FROM `ports_perms` WHERE `port_id` IN ({}))",
                &ports,
            ));
        }
        if !bills.is_empty() {
            owned.push((
                "u.`user_id` IN (SELECT `user_id` FROM `bill_perms` WHERE `bill_id` IN ({}))",
                &bills,
            ));
        }
        if !owned.is_empty() {
            let mut st = Statement::new(
                "SELECT u.`email`, u.`realname` FROM `users` u WHERE u.`email` != '' AND (",
            );
            for (i, (cond, vals)) in owned.iter().enumerate() {
                if i > 0 {
                    st.push(" OR ");
                }
                let (head, tail) = cond.split_once("{}").unwrap_or((cond, ""));
                st.push(head)
                    .values(db.dialect(), vals.iter().cloned())
                    .push(tail);
            }
            st.push(") ORDER BY u.`user_id`");
            queries.push(st);
        }
    }
    let roles: &[&str] = if settings.globals {
        &["admin", "global-read"]
    } else if settings.admins {
        &["admin"]
    } else {
        &[]
    };
    if !roles.is_empty() {
        let roles: Vec<Val> = roles.iter().map(|r| Val::text(*r)).collect();
        queries.push(in_list(
            db.dialect(),
            "SELECT u.`email`, u.`realname` FROM `users` u WHERE u.`email` != '' AND EXISTS (SELECT 1 FROM `model_has_roles` m \
             JOIN `roles` r ON r.`id` = m.`role_id` WHERE m.`model_id` = u.`user_id` \
             AND m.`model_type` = 'App\\\\Models\\\\User' AND r.`name` IN (",
            &roles,
            ")) ORDER BY u.`user_id`",
        ));
    }
    for st in &queries {
        match db.fetch(st).await {
            Ok(found_rows) => {
                for r in found_rows {
                    let mail = r.string("email").unwrap_or_default();
                    if !mail.is_empty() {
                        put(&mut found, mail, r.string("realname").unwrap_or_default());
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "alert contacts: a lookup failed"),
        }
    }
    let mut contacts: Contacts = Vec::new();
    for (mail, name) in found {
        if mail.contains(',') {
            for one in mail
                .split([',', ' ', '\t', '\n', '\r'])
                .filter(|s| !s.is_empty())
            {
                put(&mut contacts, one.to_string(), name.clone());
            }
        } else {
            put(&mut contacts, mail, name);
        }
    }
    contacts.retain(|(mail, _)| valid_address(mail));
    // A missing default address is PHP's false: the array key 0.
    let default_key = settings.default_mail.clone().unwrap_or_else(|| "0".into());
    if settings.default_copy && !contacts.iter().any(|(m, _)| *m == default_key) {
        contacts.push((default_key, String::new()));
    }
    if contacts.is_empty()
        && settings.default_if_none
        && let Some(mail) = &settings.default_mail
    {
        contacts.push((mail.clone(), String::new()));
    }
    contacts
}

fn in_list(d: Dialect, head: &str, vals: &[Val], tail: &str) -> Statement {
    let mut st = Statement::new(head);
    st.values(d, vals.iter().cloned()).push(tail);
    st
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An address a mailer takes: one `@`, a local part and a dotted or plain
/// host name, no spaces.
fn valid_address(mail: &str) -> bool {
    let Some((local, domain)) = mail.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains(|c: char| c.is_whitespace() || c == '@' || c.is_control())
        && !domain.is_empty()
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(valid_address("noc@example.com"));
        assert!(valid_address("ops@localhost"));
        assert!(!valid_address("Jane Doe"));
        assert!(!valid_address("a b@example.com"));
        assert!(!valid_address("@example.com"));
        assert!(!valid_address("noc@exa mple.com"));
    }
}
