//! LibreNMS's PHP, for the modules ironpoll does not poll natively: one
//! `lnms device:poll <id> -m <modules>` per device, run as LibreNMS's
//! dispatcher runs it (from LibreNMS's directory, as the user that owns
//! it, in a session of its own), after ironpoll's rows for the device are
//! committed, so that PHP reads what ironpoll wrote. A bounded number run
//! at once, each within a deadline. LibreNMS's PHP poll also fires its
//! post-poll work (alert rules, device groups) for the device.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::{Mode, Settings};

/// LibreNMS's `lnms` and how to run it.
#[derive(Debug)]
pub struct Php {
    lnms: PathBuf,
    dir: PathBuf,
    /// The user and group PHP runs as when ironpoll runs as root: the
    /// owner of LibreNMS's files, as LibreNMS's service runs as `librenms`.
    user: Option<(u32, u32)>,
    slots: Semaphore,
    deadline: Duration,
}

/// How one PHP run ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhpRun {
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Each module's time as LibreNMS reported it.
    pub module_seconds: Vec<(String, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Php {
    /// LibreNMS's PHP as the settings name it, or why there is none.
    pub fn find(settings: &Settings) -> Result<Php, String> {
        if settings.mode == Mode::Standalone {
            return Err("standalone mode has no LibreNMS install".into());
        }
        let dir = &settings.librenms_dir;
        let lnms = dir.join("lnms");
        let meta = std::fs::metadata(&lnms)
            .map_err(|e| format!("no LibreNMS at {} ({e})", lnms.display()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("{} is not an executable file", lnms.display()));
        }
        if let Some(interpreter) = interpreter(&lnms)
            && !interpreter.is_file()
        {
            return Err(format!(
                "{} needs {}, which is not installed",
                lnms.display(),
                interpreter.display()
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let user = (root && meta.uid() != 0).then(|| (meta.uid(), meta.gid()));
        Ok(Php {
            lnms,
            dir: dir.clone(),
            user,
            slots: Semaphore::new(settings.php.processes.max(1)),
            deadline: Duration::from_secs(u64::from(settings.php_deadline_secs())),
        })
    }

    pub fn lnms(&self) -> &Path {
        &self.lnms
    }

    pub fn processes(&self) -> usize {
        self.slots.available_permits()
    }

    /// Polls `modules` of one device with LibreNMS's PHP.
    pub async fn poll(&self, device_id: u32, modules: &[&str]) -> PhpRun {
        let _slot = self.slots.acquire().await.expect("never closed");
        let started = Instant::now();
        let mut run = self.run(device_id, modules).await;
        run.seconds = started.elapsed().as_secs_f64();
        run
    }

    async fn run(&self, device_id: u32, modules: &[&str]) -> PhpRun {
        // -v: LibreNMS then reports each module's time.
        let args = [
            "device:poll".to_string(),
            device_id.to_string(),
            "-m".into(),
            modules.join(","),
            "-v".into(),
        ];
        let (status, out) = match self.execute(&self.lnms, &[], &args, self.deadline).await {
            Ok(x) => x,
            Err(error) => {
                return PhpRun {
                    error: Some(if error.starts_with("killed after") {
                        format!("{error} (php.deadline)")
                    } else {
                        error
                    }),
                    ..PhpRun::default()
                };
            }
        };
        for line in out.lines() {
            tracing::debug!(device = device_id, "lnms: {line}");
        }
        let module_seconds = module_times(&out);
        let code = status.code();
        // 0: polled up; 6: polled, device down (LibreNMS's codes).
        let error = match code {
            Some(0) | Some(6) => None,
            Some(c) => Some(format!("lnms device:poll exited with {c}")),
            None => Some("lnms device:poll was killed by a signal".into()),
        };
        PhpRun {
            exit_code: code,
            module_seconds,
            error,
            ..PhpRun::default()
        }
    }

    /// One of LibreNMS's scripts, as its dispatcher's `call_script` runs
    /// them: `lnms` directly, a `.php` script through `/usr/bin/env php`,
    /// from LibreNMS's directory, within `deadline`. The exit code (None
    /// when killed by a signal) and the output, or why it could not run.
    pub async fn call_script(
        &self,
        script: &str,
        args: &[String],
        deadline: Duration,
    ) -> Result<(Option<i32>, String), String> {
        let path = self.dir.join(script);
        let (program, pre): (PathBuf, Vec<String>) = if script.ends_with(".php") {
            (
                PathBuf::from("/usr/bin/env"),
                vec!["php".into(), path.display().to_string()],
            )
        } else {
            (path, Vec::new())
        };
        let (status, out) = self.execute(&program, &pre, args, deadline).await?;
        Ok((status.code(), out))
    }

    /// Runs a command in a session of its own, as LibreNMS's owner when
    /// ironpoll runs as root; kills its whole group past `deadline`.
    async fn execute(
        &self,
        program: &Path,
        pre: &[String],
        args: &[String],
        deadline: Duration,
    ) -> Result<(std::process::ExitStatus, String), String> {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(pre)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own session, as the dispatcher starts it: signals to
            // ironpoll do not reach it, and a deadline kills all of it.
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            (out, err)
        };
        let waited = tokio::time::timeout(deadline, async {
            let (out, err) = collect.await;
            (child.wait().await, out, err)
        })
        .await;
        let Ok((status, out, err)) = waited else {
            if let Some(pid) = pid {
                // SAFETY: signalling the process group we started.
                unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            }
            let _ = child.wait().await;
            return Err(format!("killed after {}s", deadline.as_secs()));
        };
        let status = status.map_err(|e| format!("waiting for {}: {e}", program.display()))?;
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str(&String::from_utf8_lossy(&err));
        Ok((status, text))
    }
}

/// The interpreter a script's `#!` line names (`#!/usr/bin/env php` looks
/// `php` up in PATH).
fn interpreter(script: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = std::io::Read::read(&mut std::fs::File::open(script).ok()?, &mut head).ok()?;
    let first = std::str::from_utf8(&head[..n]).ok()?.lines().next()?;
    let rest = first.strip_prefix("#!")?.trim();
    let mut words = rest.split_whitespace();
    let program = words.next()?;
    if Path::new(program).file_name()? == "env" {
        let name = words.find(|w| !w.starts_with('-'))?;
        let path = std::env::var_os("PATH")?;
        return Some(
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(name)),
        );
    }
    Some(PathBuf::from(program))
}

/// LibreNMS's `>> Runtime for Poller module 'ports': 1.2345 seconds` lines.
fn module_times(output: &str) -> Vec<(String, f64)> {
    output
        .lines()
        .filter_map(|l| {
            let rest = l.split(">> Runtime for Poller module '").nth(1)?;
            let (name, rest) = rest.split_once("': ")?;
            let secs = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.to_string(), secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_times_are_read_from_librenms_output() {
        let out = "Starting polling run:\n\
                   >> Runtime for Poller module 'os': 0.0123 seconds with 4096 bytes\n\
                   noise\n\
                   >> Runtime for Poller module 'bgp-peers': 1.5 seconds with 0 bytes\n";
        assert_eq!(
            module_times(out),
            vec![("os".to_string(), 0.0123), ("bgp-peers".to_string(), 1.5)]
        );
    }

    #[test]
    fn an_env_shebang_is_looked_up_in_path() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("lnms");
        std::fs::write(&script, "#!/usr/bin/env sh\necho\n").unwrap();
        let found = interpreter(&script).unwrap();
        assert_eq!(found.file_name().unwrap(), "sh");
        assert!(found.is_file(), "{found:?}");
        std::fs::write(&script, "#!/opt/none/php\n").unwrap();
        assert_eq!(
            interpreter(&script).unwrap(),
            PathBuf::from("/opt/none/php")
        );
    }
}
