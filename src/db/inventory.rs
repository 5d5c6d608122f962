//! Rows as LibreNMS's discovery would store them (`sim::profile`'s
//! `Discovered`), written for a device: what the demo, the benchmarks and
//! the tests give the modules that poll what discovery found.

use super::{Db, DbError, Statement, Val};
use crate::sim::profile::Discovered;

/// Writes `rows` for `device_id`, state indexes and their translations
/// included (shared by every device, as in LibreNMS).
pub async fn insert(db: &Db, device_id: u32, rows: &[Discovered]) -> Result<(), DbError> {
    let d = db.dialect();
    let mut tx = db.begin().await?;
    for r in rows {
        let mut cols: Vec<&str> = vec!["device_id"];
        cols.extend(r.row.iter().map(|(c, _)| *c));
        let mut st = Statement::new(format!(
            "INSERT INTO `{}` ({}) VALUES (",
            r.table,
            cols.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        st.value(d, Val::from(device_id));
        for (_, v) in &r.row {
            st.push(", ");
            st.value(d, v.clone());
        }
        st.push(")");
        let id = tx.insert(&st).await?;
        let Some((name, states)) = r.state else {
            continue;
        };
        let mut find =
            Statement::new("SELECT `state_index_id` FROM `state_indexes` WHERE `state_name` = ");
        find.value(d, Val::text(name));
        let index = match tx
            .fetch(&find)
            .await?
            .first()
            .and_then(|r| r.u64("state_index_id"))
        {
            Some(index) => index,
            None => {
                let mut st = Statement::new("INSERT INTO `state_indexes` (`state_name`) VALUES (");
                st.value(d, Val::text(name)).push(")");
                let index = tx.insert(&st).await?;
                for (value, descr, generic) in states {
                    let mut st = Statement::new(
                        "INSERT INTO `state_translations` (`state_index_id`, `state_descr`, `state_value`, `state_generic_value`) VALUES (",
                    );
                    st.values(
                        d,
                        [
                            Val::UInt(index),
                            Val::text(*descr),
                            Val::Int(*value),
                            Val::Int(*generic),
                        ],
                    );
                    st.push(")");
                    tx.execute(&st).await?;
                }
                index
            }
        };
        let mut st = Statement::new(
            "INSERT INTO `sensors_to_state_indexes` (`sensor_id`, `state_index_id`) VALUES (",
        );
        st.values(d, [Val::UInt(id), Val::UInt(index)]);
        st.push(")");
        tx.execute(&st).await?;
    }
    tx.commit().await
}
