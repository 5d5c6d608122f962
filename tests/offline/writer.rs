//! The database writer's batching, on the embedded store.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ironpoll::db::Statement;
use ironpoll::db::changes::{Changes, Event};
use ironpoll::db::writer::{DbWriter, DbWriterOptions};

use crate::harness::sqlite_store;
use crate::within;

fn one_event(device_id: u32, n: usize) -> Changes {
    let mut c = Changes::for_device(device_id);
    c.event(Event {
        device_id,
        message: format!("event {n}"),
        kind: "system".into(),
        reference: None,
        severity: 3,
    });
    c
}

#[tokio::test]
async fn a_large_backlog_is_written_in_bounded_transactions_and_nothing_is_lost() {
    within(60, async {
        let store = sqlite_store().await;
        let (writer, task) = DbWriter::start(
            store.db.clone(),
            DbWriterOptions {
                // Long enough that only the row bound can start a write.
                flush_interval: Duration::from_secs(3600),
                buffer_rows: 1_000_000,
                batch_rows: 10,
            },
        );
        for n in 0..95 {
            writer.send(one_event(1, n));
        }
        // The row bound alone starts writes, before any flush is asked for.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while writer.stats().polls.load(Ordering::Relaxed) < 90 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the writer did not write a full batch on its own"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        writer.flush().await.unwrap();
        let rows = store
            .db
            .fetch(&Statement::new("SELECT COUNT(*) AS n FROM `eventlog`"))
            .await
            .unwrap();
        assert_eq!(rows[0].i64("n"), Some(95));
        // 95 rows at 10 per transaction.
        assert_eq!(writer.stats().flushes.load(Ordering::Relaxed), 10);
        drop(writer);
        task.await.unwrap();
    })
    .await;
}
