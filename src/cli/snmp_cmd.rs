//! `ironpoll get` and `ironpoll walk`.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tokio::time::Instant;

use super::snmp_args::SnmpArgs;
use crate::sim::snmprec;
use crate::snmp::display::push_netsnmp_line;
use crate::snmp::{ClientOptions, Credentials, EndOfMib, Oid, SnmpClient, Target, Value, VarBind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// `.OID = TYPE: value`, as snmpwalk -On prints it
    Netsnmp,
    /// `OID|TAG|VALUE` lines that `ironpoll sim` and snmpsim serve again
    Snmprec,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    snmp: SnmpArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "netsnmp")]
    format: OutputFormat,
    /// Agent: [udp:|udp6:]host[:port]
    agent: String,
    /// Numeric OIDs
    #[arg(required = true)]
    oids: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct WalkArgs {
    #[command(flatten)]
    snmp: SnmpArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "netsnmp")]
    format: OutputFormat,
    /// Walk every agent listed in FILE, one `[OPTIONS] TARGET COMMUNITY [NAME]`
    /// per line (for v3 the second field is the context), writing NAME.snmprec
    /// into --output-dir
    #[arg(long, value_name = "FILE", requires = "output_dir")]
    targets: Option<PathBuf>,
    /// Where --targets writes its recordings
    #[arg(long, value_name = "DIR", requires = "targets")]
    output_dir: Option<PathBuf>,
    /// Agents walked at once with --targets
    #[arg(long, default_value_t = 256, value_name = "N")]
    concurrency: usize,
    /// Print the number of varbinds found (net-snmp's -Cp)
    #[arg(long = "print-count")]
    print_count: bool,
    /// AGENT [OID], or only [OID] with --targets. The root defaults to
    /// .1.3.6.1.2.1 (mib-2), or to .1 when recording (--format snmprec, --targets)
    #[arg(value_name = "AGENT [OID]")]
    args: Vec<String>,
}

impl WalkArgs {
    #[cfg(test)]
    pub(crate) fn snmp_args(&self) -> &SnmpArgs {
        &self.snmp
    }
}

fn parse_oid(text: &str) -> anyhow::Result<Oid> {
    text.parse::<Oid>().map_err(anyhow::Error::from)
}

fn client() -> anyhow::Result<SnmpClient> {
    SnmpClient::new(ClientOptions::default()).context("cannot open SNMP sockets")
}

fn print_varbind(out: &mut impl Write, vb: &VarBind, format: OutputFormat) -> std::io::Result<()> {
    // Line buffers reused across a walk, which prints every varbind it gets.
    thread_local! {
        static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
        static RECORD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    match format {
        OutputFormat::Netsnmp => TEXT.with_borrow_mut(|line| {
            line.clear();
            push_netsnmp_line(line, vb);
            line.push('\n');
            out.write_all(line.as_bytes())
        }),
        OutputFormat::Snmprec => RECORD.with_borrow_mut(|line| {
            line.clear();
            // Exceptions have no snmprec form: a recording holds what exists.
            if !snmprec::push_line(line, vb) {
                return Ok(());
            }
            line.push(b'\n');
            out.write_all(line)
        }),
    }
}

/// Standard output, buffered. Not locked: the command runs as a task,
/// which can only hold what may cross threads, and the buffer makes a
/// lock per write cheap.
fn output() -> std::io::BufWriter<std::io::Stdout> {
    std::io::BufWriter::with_capacity(64 << 10, std::io::stdout())
}

pub async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let credentials = args.snmp.credentials()?;
    let options = args.snmp.session_options()?;
    let target: Target = args.agent.parse()?;
    let oids = args
        .oids
        .iter()
        .map(|o| parse_oid(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = client()?;
    let session = client
        .dedicated_session(&target, credentials, options)
        .await?;
    let varbinds = session.get(&oids).await?;
    let mut out = output();
    for vb in &varbinds {
        print_varbind(&mut out, vb, args.format)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub async fn walk(args: WalkArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.targets {
        let root = match args.args.as_slice() {
            [] => Oid::from_slice(&[1]),
            [oid] => parse_oid(oid)?,
            _ => bail!("with --targets, give at most one OID (the walk root)"),
        };
        let dir = args
            .output_dir
            .clone()
            .context("--targets needs --output-dir")?;
        return walk_targets(&args, file, &dir, root).await;
    }
    let (agent, root) = match args.args.as_slice() {
        [agent] => (
            agent,
            match args.format {
                OutputFormat::Snmprec => Oid::from_slice(&[1]),
                OutputFormat::Netsnmp => Oid::from_slice(&[1, 3, 6, 1, 2, 1]),
            },
        ),
        [agent, oid] => (agent, parse_oid(oid)?),
        [] => bail!("no agent given (ironpoll walk [OPTIONS] AGENT [OID])"),
        _ => bail!("too many arguments (ironpoll walk [OPTIONS] AGENT [OID])"),
    };
    let credentials = args.snmp.credentials()?;
    let mut options = args.snmp.session_options()?;
    let target: Target = agent.parse()?;
    // The command does net-snmp's root GET itself, to print what it returns
    // even when that is an exception.
    let root_fallback = std::mem::replace(&mut options.walk_root_fallback, false);
    let client = client()?;
    let session = client
        .dedicated_session(&target, credentials, options)
        .await?;
    let mut out = output();
    let mut write_error = None;
    let summary = session
        .walk_with(&root, |vb| {
            if write_error.is_none()
                && let Err(e) = print_varbind(&mut out, &vb, args.format)
            {
                write_error = Some(e);
            }
        })
        .await?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let mut count = summary.varbinds;
    // net-snmp shows where the agent's MIB ended.
    if args.format == OutputFormat::Netsnmp {
        match summary.end_of_mib {
            Some(EndOfMib::View(oid)) => print_varbind(
                &mut out,
                &VarBind::new(oid, Value::EndOfMibView),
                args.format,
            )?,
            Some(EndOfMib::NoSuchName) => writeln!(out, "End of MIB")?,
            None => {}
        }
    }
    if count == 0 && root_fallback {
        for vb in session.get(std::slice::from_ref(&root)).await? {
            print_varbind(&mut out, &vb, args.format)?;
            count += usize::from(!vb.value.is_exception());
        }
    }
    if args.print_count || args.snmp.app_options.iter().any(|o| o.contains('p')) {
        writeln!(out, "Variables found: {count}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One agent of a targets file.
#[derive(Debug)]
struct WalkTarget {
    line: usize,
    target: Target,
    credentials: Credentials,
    options: crate::snmp::SessionOptions,
    name: String,
}

#[derive(Debug, Parser)]
#[command(no_binary_name = true, args_override_self = true)]
struct TargetLine {
    #[command(flatten)]
    snmp: SnmpArgs,
    target: String,
    /// Community (v1/v2c) or context (v3), then the recording name.
    #[arg(num_args = 0..=2)]
    rest: Vec<String>,
}

/// A recording name becomes a file name: keep it to a safe alphabet.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !ok {
        bail!("recording name {name:?} must be letters, digits, '.', '_', '@' or '-'");
    }
    Ok(())
}

/// Reads and checks every line before anything is walked.
fn read_targets(global: &SnmpArgs, file: &Path) -> anyhow::Result<Vec<WalkTarget>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut targets = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{line_no}", file.display());
        let tokens = shlex::split(line).with_context(|| format!("{}: unbalanced quotes", at()))?;
        let parsed = TargetLine::try_parse_from(&tokens).map_err(|e| {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            anyhow::anyhow!("{}: {first}", at())
        })?;
        let mut snmp = global.merged(&parsed.snmp);
        let version = snmp.version().with_context(at)?;
        let selector = parsed.rest.first().cloned();
        if let Some(sel) = &selector {
            if version == crate::snmp::Version::V3 {
                snmp.context = Some(sel.clone());
            } else {
                snmp.community = Some(sel.clone());
            }
        }
        let name = parsed
            .rest
            .get(1)
            .cloned()
            .or(selector)
            .unwrap_or_else(|| parsed.target.replace([':', '[', ']', '/'], "_"));
        check_name(&name).with_context(at)?;
        targets.push(WalkTarget {
            line: line_no,
            target: parsed.target.parse().with_context(at)?,
            credentials: snmp.credentials().with_context(at)?,
            options: snmp.session_options().with_context(at)?,
            name,
        });
    }
    let mut seen = std::collections::HashMap::new();
    for t in &targets {
        if let Some(prev) = seen.insert(t.name.clone(), t.line) {
            bail!(
                "{}:{}: recording name {:?} already used on line {prev}",
                file.display(),
                t.line,
                t.name
            );
        }
    }
    Ok(targets)
}

struct WalkOutcome {
    name: String,
    agent: String,
    varbinds: usize,
    elapsed: std::time::Duration,
    error: Option<String>,
}

async fn walk_targets(
    args: &WalkArgs,
    file: &Path,
    dir: &Path,
    root: Oid,
) -> anyhow::Result<ExitCode> {
    let targets = read_targets(&args.snmp, file)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let client = client()?;
    let started = Instant::now();
    let cpu_before = crate::sim::process_cpu_seconds();
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for t in targets {
        let client = client.clone();
        let limit = limit.clone();
        let root = root.clone();
        let path = dir.join(format!("{}.snmprec", t.name));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let begun = Instant::now();
            let agent = t.target.to_string();
            let result = async {
                let session = client.session(&t.target, t.credentials, t.options).await?;
                // Lines go into the recording as varbinds arrive, with no
                // list of every varbind held in between.
                let mut buf = Vec::with_capacity(64 << 10);
                let summary = session
                    .walk_with(&root, |vb| {
                        if snmprec::push_line(&mut buf, &vb) {
                            buf.push(b'\n');
                        }
                    })
                    .await?;
                tokio::fs::write(&path, buf)
                    .await
                    .with_context(|| format!("cannot write {}", path.display()))?;
                anyhow::Ok(summary.varbinds)
            }
            .await;
            WalkOutcome {
                name: t.name,
                agent,
                varbinds: *result.as_ref().unwrap_or(&0),
                elapsed: begun.elapsed(),
                error: result.err().map(|e| format!("{e:#}")),
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done.context("walk task failed")?);
    }
    let wall = started.elapsed();
    let cpu = crate::sim::process_cpu_seconds() - cpu_before;
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    let failed: Vec<&WalkOutcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let varbinds: usize = outcomes.iter().map(|o| o.varbinds).sum();
    let mut times: Vec<f64> = outcomes
        .iter()
        .map(|o| o.elapsed.as_secs_f64() * 1e3)
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "walked {} agents: {} ok, {} failed; {varbinds} varbinds in {:.2} s wall, {:.2} s CPU",
        outcomes.len(),
        outcomes.len() - failed.len(),
        failed.len(),
        wall.as_secs_f64(),
        cpu,
    )?;
    writeln!(
        out,
        "time per agent: median {:.1} ms, p95 {:.1} ms, max {:.1} ms; recordings in {}",
        pick(0.5),
        pick(0.95),
        pick(1.0),
        dir.display()
    )?;
    for f in &failed {
        writeln!(
            out,
            "failed {} ({}): {}",
            f.agent,
            f.name,
            f.error.as_deref().unwrap_or("")
        )?;
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    })
}
