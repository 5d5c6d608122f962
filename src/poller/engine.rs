//! The poller with its writers: what `poll`, `run`, the demo and the
//! benchmarks share. Loads device state in batches, polls devices
//! concurrently, and hands each poll's rows and RRD updates to the writers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::Instrument;

use tokio::task::JoinSet;

use super::php::Php;
use super::{DeviceReport, ModuleReport, PollEnv, PolledBy, poll_device};
use crate::alerting::Alerting;
use crate::backlog::{Backlog, Bound};
use crate::config::{Mode, Settings};
use crate::db::changes::Changes;
use crate::db::state::{self, Needs};
use crate::db::writer::{Commit, DbWriter, DbWriterOptions, Written};
use crate::db::{Db, DbError};
use crate::device::Device;
use crate::icmp::Pinger;
use crate::memory::MemoryGate;
use crate::modules::Selection;
use crate::rrd::local::LocalFiles;
use crate::rrd::rrdcached::Address;
use crate::rrd::writer::WriterOptions;
use crate::rrd::{CreateSpec, RrdSink, RrdUpdate, RrdWriter};
use crate::snmp::{ClientOptions, SnmpClient};
use crate::window::{PollWindow, Slot, WindowStats};

/// The RRD sink the settings ask for.
pub fn rrd_sink(settings: &Settings) -> Result<RrdSink, String> {
    if !settings.rrd.enable {
        return Ok(RrdSink::Disabled);
    }
    let spec = CreateSpec::from_settings(&settings.rrd)?;
    if settings.rrd.rrdcached.is_empty() {
        Ok(RrdSink::Local(LocalFiles::open(
            settings.rrd.dir.clone(),
            spec,
        )?))
    } else {
        Ok(RrdSink::Cached(Address::parse(&settings.rrd.rrdcached)?))
    }
}

pub struct Engine {
    pub env: PollEnv,
    pub db: Db,
    pub db_writer: DbWriter,
    pub rrd: RrdWriter,
    /// LibreNMS's PHP for the modules ironpoll does not poll natively, or
    /// why there is none.
    pub php: Result<Php, String>,
    /// Modules already logged as skipped for want of PHP, by device (a bit
    /// per registry position): one line each per run of ironpoll.
    php_skipped: Mutex<HashMap<u32, u64>>,
    /// OSes without a definition, already logged.
    unknown_os: Mutex<std::collections::HashSet<String>>,
    /// LibreNMS's post-poll work (alert rules, device groups) done by
    /// ironpoll, or why it is not.
    pub alerting: Result<Arc<Alerting>, String>,
    /// No new poll while resident memory is at `poller.memory_high`.
    pub memory: MemoryGate,
    /// How far the poll windows this engine ran with were cut while a
    /// sink was behind.
    pub window_stats: Arc<WindowStats>,
    /// The windows handed out, so that a reload can change their
    /// `poller.concurrency`.
    windows: Mutex<Vec<std::sync::Weak<PollWindow>>>,
    /// The scheduling loop's proof of life, for systemd.
    pub heartbeat: crate::heartbeat::Heartbeat,
    /// The device polls running now, for `ironpoll status`.
    running: Mutex<HashMap<u32, RunningPoll>>,
    writer_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Engine {
    /// Opens the SNMP client and the pinger, starts both writers.
    pub async fn start(settings: Arc<Settings>, db: Db) -> anyhow::Result<Arc<Engine>> {
        let client = SnmpClient::new(ClientOptions::default())
            .map_err(|e| anyhow::anyhow!("cannot open SNMP sockets: {e}"))?;
        let pinger = if settings.icmp_check {
            match Pinger::new(settings.ping.tos) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "ICMP checks disabled");
                    None
                }
            }
        } else {
            None
        };
        let spec = CreateSpec::from_settings(&settings.rrd).map_err(anyhow::Error::msg)?;
        let sink = rrd_sink(&settings).map_err(anyhow::Error::msg)?;
        let (rrd, rrd_task) = RrdWriter::start(
            sink,
            spec,
            WriterOptions {
                buffer_limit: settings.rrd.buffer_limit,
                held: Bound {
                    units: settings.rrd.held_updates,
                    bytes: settings.rrd.held_mb << 20,
                },
                ..WriterOptions::default()
            },
        );
        let (db_writer, db_task) = DbWriter::start(
            db.clone(),
            DbWriterOptions {
                held: Bound {
                    units: settings.db.held_rows,
                    bytes: settings.db.held_mb << 20,
                },
                commit_deadline: Duration::from_secs(u64::from(settings.db.commit_deadline_secs)),
                ..DbWriterOptions::default()
            },
        );
        let php = Php::find(&settings);
        let alerting = Alerting::for_node(&settings, &db).await;
        match &alerting {
            Ok(_) => tracing::info!(
                native = %settings.alert.native,
                "alert rules and device groups run by ironpoll after each committed poll"
            ),
            Err(why) => tracing::info!("alert rules and device groups not run by ironpoll: {why}"),
        }
        for note in settings.ports_not_native() {
            tracing::warn!("{note}");
        }
        let settings_memory_high = settings.poller.memory_high;
        Ok(Arc::new(Engine {
            env: PollEnv {
                settings,
                client,
                pinger,
                store: Arc::new(db.clone()),
            },
            db,
            db_writer,
            rrd,
            php,
            php_skipped: Mutex::default(),
            alerting,
            unknown_os: Mutex::default(),
            memory: MemoryGate::new(settings_memory_high),
            window_stats: Arc::default(),
            windows: Mutex::default(),
            heartbeat: Default::default(),
            running: Mutex::default(),
            writer_tasks: vec![rrd_task, db_task],
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.env.settings
    }

    /// What to load with devices before their polls start.
    pub fn needs(&self) -> Needs {
        let longest = self
            .settings()
            .availability
            .durations
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        Needs {
            outages_since: super::unix_now() - longest,
        }
    }

    /// Polls devices, at most `concurrency` at once, and writes what each
    /// poll found. Each report goes to `on_done` as its poll completes (its
    /// rows and RRD updates already handed to the writers); none is kept
    /// here, so a cycle's memory does not grow with the fleet. A device
    /// whose poll was abandoned at its deadline has no report.
    pub async fn poll_devices(
        self: &Arc<Self>,
        devices: Vec<Device>,
        selection: &Selection,
        concurrency: usize,
        mut on_done: impl FnMut(DeviceReport),
    ) -> Result<(), DbError> {
        let window = self.poll_window(concurrency);
        let deadline = Duration::from_secs(u64::from(self.settings().device_deadline_secs()));
        let needs = self.needs();
        let mut tasks = JoinSet::new();
        let mut devices = devices.into_iter().peekable();

        // States are loaded a chunk at a time, when the chunk's first device
        // may start: memory follows the polls in flight, not the size of the
        // fleet.
        while devices.peek().is_some() {
            let chunk: Vec<Device> = devices.by_ref().take(STATE_CHUNK).collect();
            let first = self.poll_slot(&window).await;
            let ids: Vec<u32> = chunk.iter().map(|d| d.device_id).collect();
            let mut states = state::load(&self.db, &ids, needs).await?;
            let mut first = Some(first);
            for device in chunk {
                let state = states.remove(&device.device_id).unwrap_or_default();
                let selection = selection.clone();
                let permit = match first.take() {
                    Some(p) => p,
                    None => self.poll_slot(&window).await,
                };
                let engine = self.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    engine.poll_one(device, state, &selection, deadline).await
                });
                // Reports of finished polls go out while others start.
                while let Some(joined) = tasks.try_join_next() {
                    take_report(joined, &mut on_done);
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            take_report(joined, &mut on_done);
        }
        Ok(())
    }

    /// A window of at most `concurrency` polls in flight, cut while a
    /// sink is behind ([`PollWindow`]).
    pub fn poll_window(&self, concurrency: usize) -> Arc<PollWindow> {
        let window = PollWindow::new(
            concurrency,
            self.backlogs().into_iter().cloned().collect(),
            self.window_stats.clone(),
        );
        let mut windows = self.windows.lock();
        windows.retain(|w| w.strong_count() > 0);
        windows.push(Arc::downgrade(&window));
        window
    }

    /// The device polls running now, oldest first.
    pub fn running_polls(&self) -> Vec<RunningPoll> {
        let mut polls: Vec<RunningPoll> = self.running.lock().values().cloned().collect();
        polls.sort_by(|a, b| a.started.total_cmp(&b.started));
        polls
    }

    /// A new `poller.concurrency` for every window in use (a reload).
    pub fn set_concurrency(&self, concurrency: usize) {
        for w in self
            .windows
            .lock()
            .iter()
            .filter_map(std::sync::Weak::upgrade)
        {
            w.set_max(concurrency);
        }
    }

    /// Device polls running now (a window's slot can be held by a worker
    /// still waiting for a device, so the windows are not asked).
    pub fn polls_in_flight(&self) -> usize {
        self.running.lock().len()
    }

    /// Room for one more poll: none starts while a sink is behind or
    /// resident memory is high (unless no poll is in flight), and no more
    /// run at once than the window allows.
    pub(crate) async fn poll_slot(&self, window: &Arc<PollWindow>) -> Slot {
        self.sinks_room().await;
        self.memory.room(|| window.in_flight() == 0).await;
        window.acquire().await
    }

    /// The one path of a device poll, for `run`, `poll` and the demo: poll
    /// within the deadline, hand the rows and RRD updates to the writers,
    /// and once the rows are committed, run what comes after: LibreNMS's
    /// PHP for the modules ironpoll does not poll natively, then the alert
    /// rules and device groups (unless that PHP run did them). None when
    /// the poll was abandoned at its deadline.
    pub async fn poll_one(
        &self,
        device: Device,
        state: crate::db::state::DeviceState,
        selection: &Selection,
        deadline: Duration,
    ) -> Option<DeviceReport> {
        self.poll_one_fenced(device, state, selection, deadline, None)
            .await
    }

    /// [`Engine::poll_one`], asking `fence` just before the results are
    /// written: when it says the poll no longer holds its device (a
    /// cluster lock that expired mid-poll), the results are discarded, so
    /// that they never overwrite a newer poll's rows. A fenced poll returns
    /// once its rows are committed (or after `deadline` more), so that the
    /// lock released after it never outlives what makes the device not due.
    pub async fn poll_one_fenced(
        &self,
        device: Device,
        state: crate::db::state::DeviceState,
        selection: &Selection,
        deadline: Duration,
        fence: Option<&dyn Fence>,
    ) -> Option<DeviceReport> {
        self.note_unknown_os(&device);
        let _running = Running::new(self, &device);
        let span =
            tracing::info_span!("poll", device = device.device_id, hostname = %device.hostname);
        // Every line the poll logs carries its device.
        async move {
            let mut report = poll_with_deadline(&self.env, device, state, selection, deadline).await?;
            metrics::histogram!("ironpoll_device_poll_seconds").record(report.seconds);
            if let Some(fence) = fence
                && !fence.holds().await
            {
                tracing::warn!(
                    device = report.device_id,
                    hostname = %report.hostname,
                    "this poll lost its device's lock before its results were written: they are discarded"
                );
                report.changes = Default::default();
                report.rrd.clear();
                report.php_modules.clear();
                report
                    .problems
                    .push("results discarded: the poll's lock expired before they were written".into());
                return Some(report);
            }
            let committed = self.write(&mut report).await;
            let alerting = self.alerting.as_ref().ok();
            if report.php_modules.is_empty() && alerting.is_none() {
                if fence.is_some() {
                    // The caller releases the device's lock as soon as this
                    // returns, and the master's next pass queues any device
                    // that is unlocked and due: the due rule must see this
                    // poll's last_polled by then. Bounded, as a database that
                    // is down holds rows until it is back.
                    let _ = tokio::time::timeout(deadline, committed.wait()).await;
                }
                return Some(report);
            }
            let written = committed.wait().await;
            if !report.php_modules.is_empty() {
                self.hand_to_php(&mut report, &written).await;
            }
            if let Some(alerting) = alerting {
                let php_ran = report.php.as_ref().is_some_and(|r| r.error.is_none());
                if written != Written::Committed {
                    tracing::debug!(
                        device = report.device_id,
                        "alert rules not run: this poll's rows were not written ({written:?})"
                    );
                } else if alerting.wanted(php_ran) {
                    report.after_poll = Some(alerting.after_poll(report.device_id).await);
                }
            }
            Some(report)
        }
        .instrument(span)
        .await
    }

    /// A device whose OS LibreNMS's definitions do not know is polled with
    /// the global settings only; said once per OS per run.
    fn note_unknown_os(&self, device: &Device) {
        let Some(os) = device.os.as_deref().filter(|o| !o.is_empty()) else {
            return;
        };
        if self.env.settings.os.defined(os) {
            return;
        }
        if self.unknown_os.lock().insert(os.to_string()) {
            tracing::warn!(
                os,
                device = device.device_id,
                "no LibreNMS OS definition for this OS: its devices are polled with the global settings"
            );
        }
    }

    /// Runs the report's PHP modules once its rows are committed, and adds
    /// their outcome to the report.
    async fn hand_to_php(&self, report: &mut DeviceReport, written: &Written) {
        let php = match &self.php {
            Ok(php) => php,
            Err(why) => {
                let mut skipped = self.php_skipped.lock();
                let logged = skipped.entry(report.device_id).or_default();
                for m in &report.php_modules {
                    let bit = crate::modules::MODULES
                        .iter()
                        .position(|d| d.name == *m)
                        .map_or(0, |i| 1u64 << (i % 64));
                    if *logged & bit == 0 {
                        *logged |= bit;
                        tracing::warn!(
                            device = report.device_id,
                            hostname = %report.hostname,
                            module = m,
                            "module not polled: ironpoll does not poll it natively and LibreNMS's PHP is unavailable ({why})"
                        );
                    }
                }
                return;
            }
        };
        match written {
            Written::Committed => {}
            other => {
                tracing::warn!(
                    device = report.device_id,
                    hostname = %report.hostname,
                    "LibreNMS's PHP modules not run: this poll's rows were not written ({other:?})"
                );
                return;
            }
        }
        let run = php.poll(report.device_id, &report.php_modules).await;
        match &run.error {
            None => tracing::info!(
                device = report.device_id,
                hostname = %report.hostname,
                modules = report.php_modules.join(","),
                seconds = format!("{:.3}", run.seconds),
                "LibreNMS's PHP polled its modules"
            ),
            Some(e) => tracing::warn!(
                device = report.device_id,
                hostname = %report.hostname,
                modules = report.php_modules.join(","),
                error = %e, "LibreNMS's PHP poll failed"
            ),
        }
        for m in &report.php_modules {
            let seconds = run
                .module_seconds
                .iter()
                .find(|(name, _)| name == m)
                .map_or(0.0, |(_, s)| *s);
            tracing::debug!(
                device = report.device_id,
                module = m,
                by = "php",
                seconds = format!("{seconds:.3}"),
                "module polled"
            );
            report.modules.push(ModuleReport {
                module: m,
                by: PolledBy::Php,
                seconds,
                error: run.error.clone(),
            });
        }
        report.php = Some(run);
    }

    /// Hands a report's rows and updates to the writers, waiting while
    /// either is behind; the [`Commit`] says when the rows are in the
    /// database.
    pub async fn write(&self, report: &mut DeviceReport) -> Commit {
        self.hand_over(
            std::mem::take(&mut report.changes),
            std::mem::take(&mut report.rrd),
        )
        .await
    }

    /// Hands rows and RRD updates to the writers, rows first, waiting
    /// while either writer is behind.
    pub async fn hand_over(&self, mut changes: Changes, mut rrd: Vec<RrdUpdate>) -> Commit {
        // The lists grew by doubling as the poll found things; while a
        // writer is behind they wait here with up to half their room
        // unused (a first poll of a chassis logs thousands of eventlog
        // rows), so they are cut to size first.
        changes.ops.shrink_to_fit();
        rrd.shrink_to_fit();
        let committed = self.db_writer.send(changes).await;
        self.rrd.send(rrd).await;
        committed
    }

    /// The writers' backlogs: the database's, then rrdcached's.
    pub fn backlogs(&self) -> [&Arc<Backlog>; 2] {
        [self.db_writer.backlog(), self.rrd.backlog()]
    }

    /// The sinks that are behind the polls now, for logs and reports
    /// ("the database", "rrdcached").
    pub fn sinks_behind(&self) -> Vec<&'static str> {
        self.backlogs()
            .into_iter()
            .filter(|b| b.is_behind())
            .map(|b| b.sink())
            .collect()
    }

    /// Waits until no sink is behind.
    pub async fn sinks_room(&self) {
        for b in self.backlogs() {
            b.room().await;
        }
    }

    /// Writes everything held; returns what could not be written.
    pub async fn flush(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.db_writer.flush().await {
            problems.push(e);
        }
        if let Err(e) = self.rrd.flush().await {
            problems.push(e);
        }
        problems
    }

    /// Flushes and stops the writers (only flushes while other holders of
    /// the engine remain).
    pub async fn finish(self: Arc<Self>) -> Vec<String> {
        let problems = self.flush().await;
        let Ok(engine) = Arc::try_unwrap(self) else {
            return problems;
        };
        let Engine {
            db_writer,
            rrd,
            writer_tasks,
            ..
        } = engine;
        drop(db_writer);
        drop(rrd);
        for t in writer_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        problems
    }
}

fn take_report(
    joined: Result<Option<DeviceReport>, tokio::task::JoinError>,
    on_done: &mut impl FnMut(DeviceReport),
) {
    match joined {
        Ok(Some(report)) => on_done(report),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "a device poll panicked"),
    }
}

/// Whether a poll still holds its device, asked just before its results
/// are written.
pub trait Fence: Send + Sync {
    fn holds(&self) -> futures_util::future::BoxFuture<'_, bool>;
}

/// Devices whose state is loaded in one go by [`Engine::poll_devices`].
const STATE_CHUNK: usize = 32;

/// Polls a device, abandoning the poll after `deadline`.
async fn poll_with_deadline(
    env: &PollEnv,
    device: Device,
    state: crate::db::state::DeviceState,
    selection: &Selection,
    deadline: Duration,
) -> Option<DeviceReport> {
    let id = device.device_id;
    let hostname = device.hostname.clone();
    match tokio::time::timeout(deadline, poll_device(env, device, state, selection)).await {
        Ok(report) => Some(report),
        Err(_) => {
            tracing::error!(device = id, %hostname, "poll abandoned after {deadline:?}");
            None
        }
    }
}

/// Whether the mode's store needs its schema created.
pub fn creates_schema(mode: Mode) -> bool {
    mode == Mode::Standalone
}

/// A device poll running now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunningPoll {
    pub device_id: u32,
    pub hostname: String,
    /// Unix seconds.
    pub started: f64,
}

/// A poll's entry in [`Engine::running_polls`], taken out when the poll
/// ends or is dropped (abandoned at its deadline).
struct Running<'a> {
    engine: &'a Engine,
    device_id: u32,
}

impl<'a> Running<'a> {
    fn new(engine: &'a Engine, device: &Device) -> Running<'a> {
        engine.running.lock().insert(
            device.device_id,
            RunningPoll {
                device_id: device.device_id,
                hostname: device.hostname.clone(),
                started: crate::scheduler::unix_seconds(),
            },
        );
        Running {
            engine,
            device_id: device.device_id,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.engine.running.lock().remove(&self.device_id);
    }
}
