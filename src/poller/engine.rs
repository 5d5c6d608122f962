//! The poller with its writers: what `poll`, `run`, the demo and the
//! benchmarks share. Loads device state in batches, polls devices
//! concurrently, and hands each poll's rows and RRD updates to the writers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{DeviceReport, PollEnv, poll_device};
use crate::config::{Mode, Settings};
use crate::db::state::{self, Needs};
use crate::db::writer::{DbWriter, DbWriterOptions};
use crate::db::{Db, DbError};
use crate::device::Device;
use crate::icmp::Pinger;
use crate::modules::Selection;
use crate::rrd::local::LocalFiles;
use crate::rrd::rrdcached::Address;
use crate::rrd::writer::WriterOptions;
use crate::rrd::{CreateSpec, RrdSink, RrdWriter};
use crate::snmp::{ClientOptions, SnmpClient};

/// The RRD sink the settings ask for.
pub fn rrd_sink(settings: &Settings) -> Result<RrdSink, String> {
    if !settings.rrd.enable {
        return Ok(RrdSink::Disabled);
    }
    let spec = CreateSpec::from_settings(&settings.rrd)?;
    if settings.rrd.rrdcached.is_empty() {
        Ok(RrdSink::Local(LocalFiles::new(
            settings.rrd.dir.clone(),
            spec,
        )))
    } else {
        Ok(RrdSink::Cached(Address::parse(&settings.rrd.rrdcached)?))
    }
}

pub struct Engine {
    pub env: PollEnv,
    pub db: Db,
    pub db_writer: DbWriter,
    pub rrd: RrdWriter,
    writer_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Engine {
    /// Opens the SNMP client and the pinger, starts both writers.
    pub async fn start(settings: Arc<Settings>, db: Db) -> anyhow::Result<Engine> {
        let client = SnmpClient::new(ClientOptions::default())
            .map_err(|e| anyhow::anyhow!("cannot open SNMP sockets: {e}"))?;
        let pinger = if settings.icmp_check {
            match Pinger::new(settings.ping.tos) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!("ICMP checks disabled: {e}");
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
                ..WriterOptions::default()
            },
        );
        let (db_writer, db_task) = DbWriter::start(db.clone(), DbWriterOptions::default());
        Ok(Engine {
            env: PollEnv {
                settings,
                client,
                pinger,
                store: Arc::new(db.clone()),
            },
            db,
            db_writer,
            rrd,
            writer_tasks: vec![rrd_task, db_task],
        })
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
        &self,
        devices: Vec<Device>,
        selection: &Selection,
        concurrency: usize,
        mut on_done: impl FnMut(DeviceReport),
    ) -> Result<(), DbError> {
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        let deadline = Duration::from_secs(u64::from(self.settings().device_deadline_secs()));
        let needs = self.needs();
        let mut tasks = JoinSet::new();
        let mut devices = devices.into_iter().peekable();
        // States are loaded a chunk at a time, when the chunk's first device
        // may start: memory follows the polls in flight, not the size of the
        // fleet.
        while devices.peek().is_some() {
            let chunk: Vec<Device> = devices.by_ref().take(STATE_CHUNK).collect();
            let first = limit.clone().acquire_owned().await.expect("semaphore open");
            let ids: Vec<u32> = chunk.iter().map(|d| d.device_id).collect();
            let mut states = state::load(&self.db, &ids, needs).await?;
            let mut first = Some(first);
            for device in chunk {
                let state = states.remove(&device.device_id).unwrap_or_default();
                let env = self.env.clone();
                let selection = selection.clone();
                let permit = match first.take() {
                    Some(p) => p,
                    None => limit.clone().acquire_owned().await.expect("semaphore open"),
                };
                tasks.spawn(async move {
                    let _permit = permit;
                    poll_with_deadline(&env, device, state, &selection, deadline).await
                });
                // Hand finished polls to the writers while others start.
                while let Some(joined) = tasks.try_join_next() {
                    self.take_report(joined, &mut on_done);
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            self.take_report(joined, &mut on_done);
        }
        Ok(())
    }

    fn take_report(
        &self,
        joined: Result<Option<DeviceReport>, tokio::task::JoinError>,
        on_done: &mut impl FnMut(DeviceReport),
    ) {
        match joined {
            Ok(Some(mut report)) => {
                self.write(&mut report);
                on_done(report);
            }
            Ok(None) => {}
            Err(e) => tracing::error!("a device poll panicked: {e}"),
        }
    }

    /// Hands a report's rows and updates to the writers.
    pub fn write(&self, report: &mut DeviceReport) {
        self.db_writer.send(std::mem::take(&mut report.changes));
        self.rrd.send(std::mem::take(&mut report.rrd));
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

    /// Flushes and stops the writers.
    pub async fn finish(self) -> Vec<String> {
        let problems = self.flush().await;
        let Engine {
            db_writer,
            rrd,
            writer_tasks,
            ..
        } = self;
        drop(db_writer);
        drop(rrd);
        for t in writer_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        problems
    }
}

/// Devices whose state is loaded in one go by [`Engine::poll_devices`].
const STATE_CHUNK: usize = 32;

/// Polls a device, abandoning the poll after `deadline`.
pub async fn poll_with_deadline(
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
