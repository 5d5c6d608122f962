//! The schedule of a `poller-wrapper.py` cluster. Where the wrapper is a
//! process cron starts every step, this is one loop: at each step's start
//! it takes the step's list (every enabled device of the node's groups,
//! the slowest first), joins the step in memcached as master or node, and
//! then, as the poll window allows, claims each device on the list and
//! polls those it wins. Once its list is done and its polls have ended,
//! the step is finished as the wrapper finishes it and written to
//! `pollers`.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Scheduler, unix_seconds};
use crate::coord::wrapper::{Claim, Step, WrapperCluster};
use crate::db::{cluster, devices};
use crate::window::PollWindow;

/// This node's run of one step.
struct StepRun {
    step: Arc<Step>,
    /// Devices not yet claimed or passed over, in the wrapper's order.
    list: VecDeque<u32>,
    /// This step's polls.
    polls: TaskTracker,
    /// Polls this node started in the step.
    polled: u64,
    began: Instant,
    /// Stops the task that keeps the step's tags alive.
    keeper: CancellationToken,
    /// Whether the step's end has been handed to its finisher.
    ended: bool,
}

impl Scheduler {
    pub(super) async fn run_steps(
        &self,
        cluster: Arc<WrapperCluster>,
        window: &Arc<PollWindow>,
        tracker: &TaskTracker,
        in_flight: &Arc<Mutex<HashSet<u32>>>,
        shutdown: &CancellationToken,
    ) {
        let opts = &self.opts;
        let finishing = TaskTracker::new();
        let mut ticker = tokio::time::interval(opts.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut current: Option<StepRun> = None;
        let mut list_failing = false;
        let mut last_report = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            self.engine.heartbeat.turn();
            let start = cluster.step_start(unix_seconds() as i64);
            if current.as_ref().is_none_or(|run| run.step.start != start) {
                if let Some(run) = current.take() {
                    self.end_step(run, &cluster, &finishing, shutdown);
                }
                let list = match devices::wrapper_list(&self.engine.db, opts.groups.as_deref())
                    .await
                {
                    Ok(list) => {
                        if list_failing {
                            tracing::warn!("the device list can be read again");
                        }
                        list_failing = false;
                        self.engine.heartbeat.ready();
                        list
                    }
                    Err(e) => {
                        if !list_failing {
                            tracing::error!(
                                error = %e, "cannot read this step's devices; retrying every tick"
                            );
                        }
                        list_failing = true;
                        continue;
                    }
                };
                let step = Arc::new(cluster.join(start).await);
                let keeper = CancellationToken::new();
                tokio::spawn(keep_step(cluster.clone(), step.clone(), keeper.clone()));
                current = Some(StepRun {
                    step,
                    list: list.into(),
                    polls: TaskTracker::new(),
                    polled: 0,
                    began: Instant::now(),
                    keeper,
                    ended: false,
                });
            }
            let Some(run) = current.as_mut() else {
                continue;
            };
            let behind = self.held_back(in_flight);
            let room = if behind.is_empty() { window.room() } else { 0 };
            let mut start_now = Vec::new();
            // A device still polled from the last step waits its turn.
            let mut busy = Vec::new();
            while start_now.len() < room {
                let Some(id) = run.list.pop_front() else {
                    break;
                };
                if in_flight.lock().contains(&id) {
                    busy.push(id);
                    continue;
                }
                match cluster.claim(&run.step, id).await {
                    Claim::Mine => start_now.push(id),
                    Claim::Taken | Claim::Lost => {}
                }
            }
            for id in busy.into_iter().rev() {
                run.list.push_front(id);
            }
            self.stats
                .pending
                .store(run.list.len() as u64, Ordering::Relaxed);
            if !start_now.is_empty() {
                run.polled += start_now.len() as u64;
                self.start_polls(
                    start_now,
                    window,
                    tracker,
                    in_flight,
                    Some((&run.polls, run.step.start)),
                )
                .await;
            }
            if run.list.is_empty() && !run.ended {
                run.ended = true;
                self.finish_step(run, &cluster, &finishing, shutdown);
            }
            if last_report.elapsed() >= opts.frequency {
                last_report = Instant::now();
                self.log_progress(in_flight.lock().len(), window);
            }
        }
        if let Some(run) = current.take() {
            self.end_step(run, &cluster, &finishing, shutdown);
        }
        finishing.close();
        // The finishers wait for their steps' polls, which drain now.
        let bound = opts.drain + Duration::from_secs(5);
        if tokio::time::timeout(bound, finishing.wait()).await.is_err() {
            tracing::warn!("the last step was not finished in memcached before the stop");
        }
    }

    /// A step has ended on the clock: devices still on the list were not
    /// reached by this node in it.
    fn end_step(
        &self,
        mut run: StepRun,
        cluster: &Arc<WrapperCluster>,
        finishing: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let unreached = run.list.len() as u64;
        self.stats.overdue.store(unreached, Ordering::Relaxed);
        if unreached > 0 && !shutdown.is_cancelled() {
            tracing::warn!(
                step = run.step.start,
                unreached,
                polled = run.polled,
                "devices on this node's list were not reached within the step: too few polls in flight for the step (poller.concurrency) or sinks behind"
            );
        }
        if !run.ended {
            run.ended = true;
            self.finish_step(&mut run, cluster, finishing, shutdown);
        }
    }

    /// Once the step's polls have ended: the wrapper's end of a run in
    /// memcached, and this node's `pollers` row.
    fn finish_step(
        &self,
        run: &mut StepRun,
        cluster: &Arc<WrapperCluster>,
        finishing: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        run.polls.close();
        let polls = run.polls.clone();
        let step = run.step.clone();
        let keeper = run.keeper.clone();
        let cluster = cluster.clone();
        let shutdown = shutdown.clone();
        let db = self.engine.db.clone();
        let name = self.engine.settings().distributed_poller_name.clone();
        let polled = run.polled;
        let began = run.began;
        finishing.spawn(async move {
            polls.wait().await;
            let seconds = began.elapsed().as_secs();
            tokio::select! {
                _ = cluster.finish(&step, true) => {}
                _ = shutdown.cancelled() => cluster.finish(&step, false).await,
            }
            keeper.cancel();
            tracing::info!(
                step = step.start,
                role = ?step.role,
                polled,
                seconds,
                "step finished"
            );
            if let Err(e) = cluster::report_wrapper_run(&db, &name, polled, seconds).await {
                tracing::warn!(error = %e, "cannot write this node's pollers row");
            }
        });
    }
}

/// The wrapper's once-a-second touch of the step's tags, until the step is
/// finished.
async fn keep_step(cluster: Arc<WrapperCluster>, step: Arc<Step>, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => cluster.keep(&step).await,
        }
    }
}
