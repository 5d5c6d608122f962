//! What a poll reads and creates in the database while it runs: its
//! ports rows and new ports.

use futures_util::future::BoxFuture;

use super::state::{PortRow, load_ports};
use super::{Db, DbError, Statement, Val};
use crate::modules::PollStore;

/// New ports inserted (or looked up) in one statement at most: 3 binds
/// each, well under MariaDB's 65,535.
const NEW_PORTS_PER_STATEMENT: usize = 1000;

impl PollStore for Db {
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
