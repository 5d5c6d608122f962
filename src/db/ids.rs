//! What a poll reads and creates in the database while it runs: its
//! ports rows and new ports.

use futures_util::future::BoxFuture;

use super::state::{PortRow, load_ports};
use super::{Db, DbError, Row, Statement, Val, schema};
use crate::modules::PollStore;

/// New ports inserted (or looked up) in one statement at most: 3 binds
/// each, well under MariaDB's 65,535.
const NEW_PORTS_PER_STATEMENT: usize = 1000;

impl PollStore for Db {
    fn rows<'a>(
        &'a self,
        table: &'static str,
        device_id: u32,
    ) -> BoxFuture<'a, Result<Vec<Row>, DbError>> {
        Box::pin(async move {
            let t = schema::table(table)
                .ok_or_else(|| DbError::Query(format!("{table} is not a table ironpoll knows")))?;
            let order = t
                .indexes
                .iter()
                .find(|i| i.name == "PRIMARY")
                .map(|i| {
                    i.columns
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "`device_id`".into());
            let mut st = Statement::new(format!("SELECT * FROM `{table}` WHERE `device_id` = "));
            st.value(self.dialect(), Val::from(device_id));
            st.push(&format!(" ORDER BY {order}"));
            self.fetch(&st).await
        })
    }

    fn state_translations(&self, device_id: u32) -> BoxFuture<'_, Result<Vec<Row>, DbError>> {
        Box::pin(async move {
            let mut st = Statement::new(
                "SELECT m.`sensor_id`, t.`state_descr`, t.`state_value` FROM `sensors_to_state_indexes` m \
                 JOIN `sensors` s ON s.`sensor_id` = m.`sensor_id` \
                 JOIN `state_translations` t ON t.`state_index_id` = m.`state_index_id` \
                 WHERE s.`device_id` = ",
            );
            st.value(self.dialect(), Val::from(device_id));
            st.push(" ORDER BY t.`state_translation_id`");
            self.fetch(&st).await
        })
    }

    fn ports(&self, device_id: u32) -> BoxFuture<'_, Result<Vec<PortRow>, DbError>> {
        Box::pin(async move {
            Ok(load_ports(self, &[device_id])
                .await?
                .into_iter()
                .map(|(_, row)| row)
                .collect())
        })
    }

    fn new_ports<'a>(
        &'a self,
        device_id: u32,
        ports: &'a [(i64, Option<String>)],
    ) -> BoxFuture<'a, Result<Vec<u32>, DbError>> {
        Box::pin(async move {
            let d = self.dialect();
            // One transaction for the device's new ports, in multi-row
            // statements (a new switch brings hundreds of ports).
            let mut tx = self.begin().await?;
            for chunk in ports.chunks(NEW_PORTS_PER_STATEMENT) {
                let mut st = Statement::new(
                    "INSERT INTO `ports` (`device_id`, `ifIndex`, `ifName`) VALUES ",
                );
                for (i, (if_index, if_name)) in chunk.iter().enumerate() {
                    st.push(if i > 0 { ", (" } else { "(" });
                    st.values(
                        d,
                        [
                            Val::from(device_id),
                            Val::Int(*if_index),
                            Val::opt_text(
                                if_name
                                    .as_deref()
                                    .map(|n| n.chars().take(255).collect::<String>()),
                            ),
                        ],
                    );
                    st.push(")");
                }
                tx.execute(&st).await?;
            }
            // Each new port's id is the newest row of its device and
            // ifIndex: an older row with the same ifIndex (a deleted port)
            // has a smaller id, and no id is inferred from another row's.
            let mut by_index: std::collections::HashMap<i64, u32> =
                std::collections::HashMap::with_capacity(ports.len());
            for chunk in ports.chunks(NEW_PORTS_PER_STATEMENT) {
                let mut st =
                    Statement::new("SELECT `port_id`, `ifIndex` FROM `ports` WHERE `device_id` = ");
                st.value(d, Val::from(device_id));
                st.push(" AND `ifIndex` IN (");
                st.values(d, chunk.iter().map(|(i, _)| Val::Int(*i)));
                st.push(")");
                for row in tx.fetch(&st).await? {
                    if let (Some(id), Some(index)) = (row.u64("port_id"), row.i64("ifIndex")) {
                        let id = id as u32;
                        let newest = by_index.entry(index).or_insert(id);
                        *newest = (*newest).max(id);
                    }
                }
            }
            let ids: Vec<u32> = ports
                .iter()
                .map(|(i, _)| {
                    by_index.get(i).copied().ok_or_else(|| {
                        DbError::Query(format!("new port ifIndex {i} not found after its insert"))
                    })
                })
                .collect::<Result<_, _>>()?;
            for chunk in ids.chunks(NEW_PORTS_PER_STATEMENT) {
                let mut st = Statement::new("INSERT INTO `ports_statistics` (`port_id`) VALUES ");
                for (i, id) in chunk.iter().enumerate() {
                    st.push(if i > 0 { ", (" } else { "(" });
                    st.value(d, Val::from(*id)).push(")");
                }
                tx.execute(&st).await?;
            }
            tx.commit().await?;
            Ok(ids)
        })
    }
}
