//! Local RRD files through librrd, for installs without rrdcached and for
//! the embedded mode. Runs on a blocking thread; librrd's `_r` calls used
//! here keep their state per thread.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::librrd::{LibRrd, librrd};
use super::{CreateSpec, RrdFile, RrdUpdate};

/// What one round of local writes did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub written: u64,
    pub created: u64,
    /// Updates librrd refused (older than the file's last update, wrong
    /// number of values); never retried.
    pub rejected: u64,
    /// The first few refusals, for the log.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LocalFiles {
    dir: PathBuf,
    spec: CreateSpec,
}

impl LocalFiles {
    pub fn new(dir: PathBuf, spec: CreateSpec) -> LocalFiles {
        LocalFiles { dir, spec }
    }

    /// Local files, once librrd, which writes them, has been loaded: a host
    /// without it fails at start with what to install, rather than
    /// refusing every update later.
    pub fn open(dir: PathBuf, spec: CreateSpec) -> Result<LocalFiles, String> {
        librrd()?;
        Ok(LocalFiles::new(dir, spec))
    }

    pub fn path(&self, file: &RrdFile) -> PathBuf {
        self.dir.join(&file.host_dir).join(&file.name)
    }

    /// Writes updates, creating missing files; updates of one file keep
    /// their order.
    pub fn apply(&self, updates: Vec<RrdUpdate>) -> Outcome {
        let mut by_file: BTreeMap<RrdFile, Vec<RrdUpdate>> = BTreeMap::new();
        for u in updates {
            by_file.entry(u.file.clone()).or_default().push(u);
        }
        let mut out = Outcome::default();
        for (file, mut ups) in by_file {
            ups.sort_by_key(|u| u.time);
            let path = self.path(&file);
            if !path.exists() {
                let start = ups[0].time - 1;
                if let Err(e) = self.create(&path, &ups[0], start) {
                    out.rejected += ups.len() as u64;
                    note(&mut out, format!("{}: {e}", path.display()));
                    continue;
                }
                out.created += 1;
            }
            // One call per update: librrd stops at the first refused value
            // of a call, having written the ones before it, so only single
            // updates give an exact account.
            for u in &ups {
                match update(&path, std::slice::from_ref(u)) {
                    Ok(()) => out.written += 1,
                    Err(e) => {
                        out.rejected += 1;
                        note(&mut out, format!("{}: {e}", path.display()));
                    }
                }
            }
        }
        out
    }

    fn create(&self, path: &Path, first: &RrdUpdate, start: i64) -> Result<(), String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let spec = first.create_spec(&self.spec);
        let args: Vec<String> = spec
            .ds_args(first.def)
            .into_iter()
            .chain(spec.rra_args())
            .collect();
        let c_args = to_c(&args)?;
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        let mut sources: [*const libc::c_char; 1] = [std::ptr::null()];
        let filename = c_path(path)?;
        let rrd = librrd()?;
        // SAFETY: every pointer refers to a NUL-terminated string that lives
        // until the call returns; `sources` is a NULL-terminated array.
        let rc = unsafe {
            (rrd.clear_error)();
            (rrd.create_r2)(
                filename.as_ptr(),
                libc::c_ulong::from(spec.step),
                start as libc::time_t,
                1,
                sources.as_mut_ptr(),
                std::ptr::null(),
                argv.len() as libc::c_int,
                argv.as_mut_ptr(),
            )
        };
        check(rrd, rc)
    }
}

fn note(out: &mut Outcome, e: String) {
    if out.errors.len() < 5 {
        out.errors.push(e);
    }
}

fn update(path: &Path, ups: &[RrdUpdate]) -> Result<(), String> {
    let args: Vec<String> = ups.iter().map(RrdUpdate::argument).collect();
    let c_args = to_c(&args)?;
    let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    let filename = c_path(path)?;
    let rrd = librrd()?;
    // SAFETY: as in create: valid NUL-terminated strings for the call's
    // duration.
    let rc = unsafe {
        (rrd.clear_error)();
        (rrd.updatex_r)(
            filename.as_ptr(),
            std::ptr::null(),
            0,
            argv.len() as libc::c_int,
            argv.as_mut_ptr(),
        )
    };
    check(rrd, rc)
}

fn check(rrd: &LibRrd, rc: libc::c_int) -> Result<(), String> {
    if rc == 0 {
        return Ok(());
    }
    Err(rrd.last_error("librrd failed"))
}

fn to_c(args: &[String]) -> Result<Vec<CString>, String> {
    args.iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("NUL in argument {a:?}")))
        .collect()
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "NUL in path".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::core::UPTIME;
    use crate::rrd::{Datum, Rra};

    #[test]
    fn creates_then_updates_and_refuses_old_times() {
        let dir = tempfile::tempdir().unwrap();
        let files = LocalFiles::new(
            dir.path().to_path_buf(),
            CreateSpec {
                step: 300,
                heartbeat: 600,
                rras: vec![Rra::parse("RRA:AVERAGE:0.5:1:10").unwrap()],
            },
        );
        let file = RrdFile::new("sw1", &["uptime"]);
        let up = |t: i64, v: u64| RrdUpdate::new(file.clone(), &UPTIME, t, vec![Datum::Uint(v)]);
        let out = files.apply(vec![up(1_700_000_000, 5), up(1_700_000_300, 305)]);
        assert_eq!((out.created, out.written, out.rejected), (1, 2, 0));
        assert!(dir.path().join("sw1/uptime.rrd").is_file());
        let out = files.apply(vec![up(1_700_000_100, 1), up(1_700_000_600, 605)]);
        assert_eq!((out.created, out.written, out.rejected), (0, 1, 1));
        assert!(out.errors[0].contains("sw1/uptime.rrd"), "{:?}", out.errors);
    }
}
