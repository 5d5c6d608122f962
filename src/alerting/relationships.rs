//! How LibreNMS joins a table to `devices` for an alert rule or a device
//! group (`LibreNMS/DB/Schema.php`): a column `<thing>_id` is taken to
//! point at the table `<thing>s` (`<thing>es` after an x), when that table
//! exists; paths to `devices` are found by LibreNMS's own depth-first
//! search over those guesses, whose order decides which path wins, so it
//! is followed step for step.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use crate::db::schema::{CATALOG, TableShape};

/// Tables LibreNMS leaves out of the relationships (permission maps).
const BLACKLIST: &[&str] = &["devices_perms", "bill_perms", "ports_perms"];

pub fn shape(table: &str) -> Option<&'static TableShape> {
    static BY_NAME: OnceLock<FxHashMap<&'static str, &'static TableShape>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| CATALOG.iter().map(|t| (t.name, t)).collect())
        .get(table)
        .copied()
}

pub fn primary_key(table: &str) -> Option<&'static str> {
    shape(table).and_then(|t| t.primary)
}

pub fn columns(table: &str) -> &'static [&'static str] {
    shape(table).map_or(&[], |t| t.columns)
}

pub fn column_exists(table: &str, column: &str) -> bool {
    columns(table).contains(&column)
}

/// The table a `<thing>_id` column points at (`getTableFromKey`).
fn table_from_key(key: &str) -> Option<&'static str> {
    let stem = key.strip_suffix("_id")?;
    if key == "app_id" {
        return Some("applications");
    }
    let guessed = if stem.ends_with('s') {
        stem.to_string()
    } else if stem.ends_with('x') {
        format!("{stem}es")
    } else {
        format!("{stem}s")
    };
    shape(&guessed).map(|t| t.name)
}

/// Each table's related tables, in the schema's order
/// (`getTableRelationships`).
fn relationships() -> &'static Vec<(&'static str, Vec<&'static str>)> {
    static RELATIONS: OnceLock<Vec<(&'static str, Vec<&'static str>)>> = OnceLock::new();
    RELATIONS.get_or_init(|| {
        CATALOG
            .iter()
            .filter(|t| !BLACKLIST.contains(&t.name))
            .map(|t| {
                let related = t
                    .columns
                    .iter()
                    .filter_map(|c| table_from_key(c))
                    .filter(|guess| *guess != t.name)
                    .collect();
                (t.name, related)
            })
            .collect()
    })
}

fn related(table: &str) -> Option<&'static [&'static str]> {
    relationships()
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, r)| r.as_slice())
}

/// `findPathRecursive`: a path from one of `tables` to `target`, target
/// first, as LibreNMS's search finds it.
fn find_path(
    tables: &[&'static str],
    target: &str,
    history: &[&'static str],
) -> Option<Vec<&'static str>> {
    let of_target = related(target).unwrap_or(&[]);
    let tables: Vec<&'static str> = tables
        .iter()
        .copied()
        .filter(|t| !history.contains(t))
        .collect();
    for &table in &tables {
        if of_target.contains(&table) {
            return Some(vec![table, shape(target)?.name]);
        }
        let mut seen = history.to_vec();
        seen.extend(&tables);
        let found = match related(table) {
            Some(own) if !own.is_empty() => {
                if own.contains(&target) {
                    return Some(vec![shape(target)?.name, table]);
                }
                find_path(own, target, &seen)
            }
            _ => {
                // A dead end: search from the tables that point at it.
                let pointing: Vec<&'static str> = relationships()
                    .iter()
                    .filter(|(_, r)| r.contains(&table))
                    .map(|(t, _)| *t)
                    .collect();
                find_path(&pointing, target, &seen)
            }
        };
        if let Some(mut path) = found {
            path.push(table);
            return Some(path);
        }
    }
    None
}

/// The path of tables from `devices` to `table` (`findRelationshipPath`),
/// `devices` first; None when LibreNMS finds none.
pub fn path_to_devices(table: &str) -> Option<Vec<&'static str>> {
    if table == "devices" {
        return Some(vec!["devices"]);
    }
    static PATHS: OnceLock<FxHashMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    PATHS
        .get_or_init(|| {
            CATALOG
                .iter()
                .filter_map(|t| Some((t.name, find_path(&[t.name], "devices", &[])?)))
                .collect()
        })
        .get(table)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_tables_as_librenms_guesses() {
        assert_eq!(table_from_key("device_id"), Some("devices"));
        assert_eq!(table_from_key("location_id"), Some("locations"));
        assert_eq!(table_from_key("app_id"), Some("applications"));
        assert_eq!(table_from_key("nonsense_id"), None);
        assert_eq!(table_from_key("device"), None);
    }

    #[test]
    fn paths_lead_from_devices() {
        assert_eq!(path_to_devices("ports").unwrap(), ["devices", "ports"]);
        assert_eq!(
            path_to_devices("locations").unwrap(),
            ["locations", "devices"]
        );
        assert_eq!(
            path_to_devices("bills").unwrap(),
            ["devices", "ports", "bill_ports", "bills"]
        );
        assert_eq!(path_to_devices("devices").unwrap(), ["devices"]);
    }
}
