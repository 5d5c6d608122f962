//! The `ironpoll` command line. Option names follow the tools operators
//! already know: net-snmp for `get`/`walk`, snmpsim for `sim`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod device_cmd;
mod generate;
pub mod ping_cmd;
mod poll_cmd;
pub mod setup;
mod sim_cmd;
mod snmp_args;
mod snmp_cmd;
mod status_cmd;

pub use snmp_args::SnmpArgs;

#[derive(Debug, Parser)]
#[command(
    name = "ironpoll",
    version,
    about = "A native poller engine for LibreNMS",
    propagate_version = true
)]
pub(crate) struct Cli {
    /// How log lines are written: text for people, json (one object per
    /// line) for log collectors
    #[arg(long, global = true, value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    log_format: crate::telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// SNMP GET of one or more OIDs, like snmpget.
    Get(snmp_cmd::GetArgs),
    /// Walk an agent (GETBULK, or GETNEXT for v1), like snmpbulkwalk; or many
    /// agents at once with --targets.
    Walk(snmp_cmd::WalkArgs),
    /// Serve simulated SNMP agents from snmprec recordings or generated profiles.
    Sim(sim_cmd::SimArgs),
    /// Poll a simulated fleet into an embedded store and RRD files, with a summary and a traffic graph
    Demo(demo::DemoArgs),
    /// Run the poller daemon: poll every device on LibreNMS's schedule.
    Run(setup::ConfigArgs),
    /// Poll devices once and write the results (like lnms device:poll).
    Poll(poll_cmd::PollArgs),
    /// Add, list or remove devices of the embedded store.
    Device(device_cmd::DeviceArgs),
    /// Print the resolved configuration and where each value came from.
    CheckConfig(setup::ConfigArgs),
    /// What this node and its cluster are doing: nodes, running polls, overdue devices.
    Status(status_cmd::StatusArgs),
    /// Write the man pages or the shell completions (for packagers).
    Generate(generate::GenerateArgs),
    /// Ping hosts with fping's options, output and exit codes; or fast ping the store's devices.
    Ping(ping_cmd::PingArgs),
}

/// Process exit code for a command that ran into an error.
const EXIT_FAILURE: u8 = 1;
/// Process exit code for a command line that could not be parsed.
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let default_level = match cli.command {
        Command::Sim(_) | Command::Run(_) => "info",
        _ => "warn",
    };
    crate::telemetry::init(default_level, cli.log_format);
    // The simulator serves each socket from one task: with one thread it
    // runs best on a current-thread runtime, free of cross-thread wake-ups.
    let mut builder = match &cli.command {
        Command::Sim(args) if args.threads <= 1 => tokio::runtime::Builder::new_current_thread(),
        // One task drives every echo; a second thread would only add
        // cross-thread wake-ups for each reply.
        Command::Ping(_) => tokio::runtime::Builder::new_current_thread(),
        // One agent's get or walk blocks on a socket of its own
        // (`snmp::dedicated`). A walk of many (`--targets`) waits on the
        // shared sockets nearly all the time: on one thread the task that
        // reads a reply and the walk it wakes take turns without a futex,
        // an eventfd write or a parked worker's wake-up per request, which
        // cost more than the walk itself (benches/RESULTS.md, "One walk").
        Command::Get(_) | Command::Walk(_) => tokio::runtime::Builder::new_current_thread(),
        Command::Sim(args) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(args.threads);
            b
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ironpoll: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Get(args) => as_task(snmp_cmd::get(args)).await,
            Command::Walk(args) => as_task(snmp_cmd::walk(args)).await,
            Command::Sim(args) => sim_cmd::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Run(args) => {
                let loaded = args.load().await?;
                let reload: crate::daemon::reload::Reload = std::sync::Arc::new(move || {
                    let args = args.clone();
                    Box::pin(async move {
                        let again = args.load().await?;
                        again.db.close().await;
                        Ok(again.settings)
                    })
                });
                crate::daemon::run_with_reload(
                    loaded.settings,
                    loaded.db,
                    Default::default(),
                    Some(reload),
                )
                .await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Poll(args) => poll_cmd::run(args).await,
            Command::Device(args) => device_cmd::run(args).await,
            Command::CheckConfig(args) => setup::check_config(args).await,
            Command::Status(args) => status_cmd::run(args).await,
            Command::Generate(args) => generate::run(args),
            Command::Ping(args) => Ok(ping_cmd::run(args).await),
        }
    });
    // Do not wait for tasks still parked on sockets or timers.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("ironpoll: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Runs a command as a task of its own rather than as the future the
/// runtime blocks on. On a current-thread runtime a reply then wakes the
/// command's task directly; waking the blocked-on future instead goes
/// through the driver, and costs an extra `epoll_wait` per request.
async fn as_task(
    command: impl Future<Output = anyhow::Result<ExitCode>> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    match tokio::spawn(command).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(e.into()),
    }
}

/// clap's errors span several lines (usage, hint); an operator gets the first
/// one and a pointer to `--help`. Help and version requests print in full.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ");
    eprintln!("ironpoll: {first} (see ironpoll --help)");
    // `ironpoll ping` answers a bad command line as fping does.
    if std::env::args().nth(1).as_deref() == Some("ping") {
        return ExitCode::from(ping_cmd::EXIT_INVALID);
    }
    ExitCode::from(EXIT_USAGE)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn net_snmp_spellings_parse() {
        let cli = Cli::try_parse_from([
            "ironpoll",
            "walk",
            "-v2c",
            "-cpublic",
            "-Cr25",
            "-Cc",
            "-On",
            "-t",
            "0.5",
            "-r",
            "2",
            "udp:127.0.0.1:1161",
            ".1.3.6.1.2.1.2",
        ])
        .unwrap();
        let Command::Walk(w) = cli.command else {
            panic!("not a walk");
        };
        assert_eq!(w.snmp_args().version.as_deref(), Some("2c"));
        assert_eq!(w.snmp_args().community.as_deref(), Some("public"));
        assert_eq!(w.snmp_args().app_options, vec!["r25", "c"]);
    }
}
