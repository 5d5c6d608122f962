//! Rows a poll must create before it can finish: new ports.

use futures_util::future::BoxFuture;

use super::{Db, DbError, Statement, Val};
use crate::modules::IdAllocator;

impl IdAllocator for Db {
    fn new_port<'a>(
        &'a self,
        device_id: u32,
        if_index: i64,
        if_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u32, DbError>> {
        Box::pin(async move {
            let d = self.dialect();
            let mut st =
                Statement::new("INSERT INTO `ports` (`device_id`, `ifIndex`, `ifName`) VALUES (");
            st.values(
                d,
                [
                    Val::from(device_id),
                    Val::Int(if_index),
                    Val::opt_text(if_name.map(|n| n.chars().take(255).collect::<String>())),
                ],
            );
            st.push(")");
            let port_id = self.insert(&st).await? as u32;
            let mut stats = Statement::new("INSERT INTO `ports_statistics` (`port_id`) VALUES (");
            stats.value(d, Val::from(port_id)).push(")");
            self.execute(&stats).await?;
            Ok(port_id)
        })
    }
}
