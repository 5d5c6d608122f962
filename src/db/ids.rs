//! What a poll reads and creates in the database while it runs: its
//! ports rows and new ports.

use futures_util::future::BoxFuture;

use super::state::{PortRow, load_ports};
use super::{Db, DbError, Statement, Val};
use crate::modules::PollStore;

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
            // One transaction for the device's new ports; each insert gives
            // its id.
            let mut tx = self.begin().await?;
            let mut ids = Vec::with_capacity(ports.len());
            for (if_index, if_name) in ports {
                let mut st = Statement::new(
                    "INSERT INTO `ports` (`device_id`, `ifIndex`, `ifName`) VALUES (",
                );
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
                let port_id = tx.insert(&st).await? as u32;
                let mut stats =
                    Statement::new("INSERT INTO `ports_statistics` (`port_id`) VALUES (");
                stats.value(d, Val::from(port_id)).push(")");
                tx.execute(&stats).await?;
                ids.push(port_id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }
}
