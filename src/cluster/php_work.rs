//! The cluster's work that stays with LibreNMS's PHP: discovery, services,
//! alerting and billing. A node takes it only when a LibreNMS directory
//! with PHP is configured (and the work is dispatched on this node), and
//! then runs LibreNMS's own command for each job as the Python service
//! does (`queuemanager.py`), with the same locks and exit-code rules.
//! Without PHP these queues are never popped, so no job is lost: another
//! node takes it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Node;
use super::workers::Popper;
use crate::coord::redis::Redis;
use crate::poller::php::Php;

/// LibreNMS's hard limit on a script (`DEFAULT_SCRIPT_TIMEOUT`).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(3600);

/// The kinds of PHP work, as the Python service names its queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PhpWork {
    Discovery,
    Services,
    Alerting,
    Billing,
}

impl PhpWork {
    pub(super) const ALL: [PhpWork; 4] = [
        PhpWork::Discovery,
        PhpWork::Services,
        PhpWork::Alerting,
        PhpWork::Billing,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            PhpWork::Discovery => "discovery",
            PhpWork::Services => "services",
            PhpWork::Alerting => "alerting",
            PhpWork::Billing => "billing",
        }
    }

    /// Grouped queues are per poller group; the others are group 0 only.
    pub(super) fn grouped(self) -> bool {
        matches!(self, PhpWork::Discovery | PhpWork::Services)
    }

    /// The thread names LibreNMS gives its workers (part of lock owners).
    fn title(self) -> &'static str {
        match self {
            PhpWork::Discovery => "Discovery",
            PhpWork::Services => "Services",
            PhpWork::Alerting => "Alerting",
            PhpWork::Billing => "Billing",
        }
    }
}

impl From<PhpWork> for super::Work {
    fn from(w: PhpWork) -> super::Work {
        match w {
            PhpWork::Discovery => super::Work::Discovery,
            PhpWork::Services => super::Work::Services,
            PhpWork::Alerting => super::Work::Alerting,
            PhpWork::Billing => super::Work::Billing,
        }
    }
}

impl Node {
    /// One worker of `work` on `group`'s queue, until `stop`.
    pub(super) async fn run_php_worker(
        self: Arc<Self>,
        php: Arc<Php>,
        work: PhpWork,
        group: i64,
        worker: u32,
        stop: CancellationToken,
    ) {
        let mut queue = Popper::new(Redis::queue_key(work.name(), group));
        let _ = self.redis.ensure_queue(queue.key()).await;
        let owner = if work.grouped() {
            format!("{}-{}_{group}-{worker}", self.unique_name, work.title())
        } else {
            format!("{}-{}", self.unique_name, work.title())
        };
        while let Some(payload) = queue.next(&self.redis, &stop).await {
            let Some(payload) = payload else {
                continue;
            };
            let started = tokio::time::Instant::now();
            self.php_job(&php, work, &payload, &owner).await;
            tracing::info!(
                "Completed {} run for {payload} ({group}) in {:.2}s",
                work.name(),
                started.elapsed().as_secs_f64()
            );
            self.count_work(work.into(), started.elapsed());
        }
    }

    async fn php_job(&self, php: &Php, work: PhpWork, payload: &str, owner: &str) {
        let d = &self.settings.dispatcher;
        let down_retry = u64::from(self.settings.poller.down_retry);
        let run = |script: &'static str, args: Vec<String>| async move {
            match php.call_script(script, &args, SCRIPT_DEADLINE).await {
                Ok((code, out)) => (code, out),
                Err(e) => {
                    tracing::error!(error = %e, "{script} could not be run");
                    (None, e)
                }
            }
        };
        match work {
            PhpWork::Discovery => {
                let lock = format!("discovery.device.{payload}");
                let ttl = super::master::until_next_multiple(d.discovery.frequency).as_secs();
                if !matches!(self.redis.lock(&lock, owner, ttl, false).await, Ok(true)) {
                    return;
                }
                let (code, out) = run(
                    "lnms",
                    vec!["device:discover".into(), payload.into(), "-q".into()],
                )
                .await;
                match code {
                    Some(0) => {
                        let _ = self.redis.unlock(&lock, owner).await;
                    }
                    Some(6) => {
                        tracing::info!(
                            "Device {payload} is down, cannot discover, waiting {down_retry}s for retry"
                        );
                        let _ = self.redis.lock(&lock, owner, down_retry, true).await;
                    }
                    _ => {
                        tracing::error!(
                            "Discovering device {payload} failed with exit code {code:?}: {out}"
                        );
                        let _ = self.redis.unlock(&lock, owner).await;
                    }
                }
            }
            PhpWork::Services => {
                let lock = format!("services.device.{payload}");
                let ttl = u64::from(d.services.frequency);
                if !matches!(self.redis.lock(&lock, owner, ttl, false).await, Ok(true)) {
                    return;
                }
                let (code, out) =
                    run("check-services.php", vec!["-h".into(), payload.into()]).await;
                match code {
                    Some(0) => {
                        let _ = self.redis.unlock(&lock, owner).await;
                    }
                    Some(5) => {
                        tracing::info!(
                            "Device {payload} is down, cannot poll service, waiting {down_retry}s for retry"
                        );
                        let _ = self.redis.lock(&lock, owner, down_retry, true).await;
                    }
                    // As LibreNMS: the lock stays until it expires.
                    _ => tracing::warn!(
                        "Unknown error while checking services on device {payload} with exit code {code:?}: {out}"
                    ),
                }
            }
            PhpWork::Alerting => {
                let (code, out) = run("alerts.php", vec!["-f".into()]).await;
                if code != Some(0) {
                    tracing::warn!("There was an error issuing alerts (exit code {code:?}): {out}");
                }
            }
            PhpWork::Billing => {
                let script = if payload == "poll" {
                    "poll-billing.php"
                } else {
                    "billing-calculate.php"
                };
                let (code, out) = run(script, vec!["-f".into()]).await;
                if code != Some(0) {
                    tracing::warn!("Error {code:?} in {payload} billing:\n{out}");
                }
            }
        }
    }
}
