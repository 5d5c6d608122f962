//! The database writer's batching, on the embedded store.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ironpoll::backlog::Bound;
use ironpoll::db::Statement;
use ironpoll::db::writer::{DbWriter, DbWriterOptions};

use crate::harness::{one_event, sqlite_store};
use crate::within;

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
                ..DbWriterOptions::default()
            },
        );
        for n in 0..95 {
            writer.send(one_event(1, n)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_wait_while_the_writer_is_behind_and_every_row_arrives() {
    within(60, async {
        let store = sqlite_store().await;
        let (writer, task) = DbWriter::start(
            store.db.clone(),
            DbWriterOptions {
                // A slow sink: one write every 100 ms, whatever it holds.
                flush_interval: Duration::from_millis(100),
                batch_rows: 1_000_000,
                held: Bound {
                    units: 30,
                    bytes: 1 << 30,
                },
                ..DbWriterOptions::default()
            },
        );
        let senders: Vec<_> = (0..10u32)
            .map(|device| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    for n in 0..20 {
                        writer.send(one_event(device + 1, n)).await;
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.unwrap();
        }
        writer.flush().await.unwrap();
        let rows = store
            .db
            .fetch(&Statement::new("SELECT COUNT(*) AS n FROM `eventlog`"))
            .await
            .unwrap();
        assert_eq!(rows[0].i64("n"), Some(200), "every row arrives");
        let backlog = writer.backlog();
        let stats = backlog.stats();
        // Held at most the bound and one more poll's rows.
        assert!(stats.peak_units.load(Ordering::Relaxed) <= 31, "{stats:?}");
        assert!(stats.waits.load(Ordering::Relaxed) > 0, "{stats:?}");
        assert!(stats.episodes.load(Ordering::Relaxed) > 0, "{stats:?}");
        assert_eq!(backlog.held(), (0, 0));
        assert!(!backlog.is_behind());
        drop(writer);
        task.await.unwrap();
    })
    .await;
}
