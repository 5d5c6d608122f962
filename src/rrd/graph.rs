//! Graphs through librrd: `rrd_graph_v` with rrdtool's own arguments.

use std::ffi::CString;
use std::path::Path;

use parking_lot::Mutex;

use super::librrd::librrd;

/// librrd's graph parses its arguments with getopt, which is not
/// thread-safe: one graph at a time per process.
static GRAPH: Mutex<()> = Mutex::new(());

/// Renders a graph into `out` (the format follows `--imgformat`, PNG by
/// default); `args` are rrdtool graph's arguments after the file name.
pub fn render(out: &Path, args: &[String]) -> Result<(), String> {
    let _one = GRAPH.lock();
    let mut all = vec!["graphv".to_string(), out.display().to_string()];
    all.extend(args.iter().cloned());
    let c_args: Vec<CString> = all
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("NUL in argument {a:?}")))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*mut libc::c_char> = c_args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    let rrd = librrd()?;
    // SAFETY: argv points at NUL-terminated strings alive for the call;
    // librrd only reads them. The info list it returns is freed here.
    unsafe {
        (rrd.clear_error)();
        let info = (rrd.graph_v)(argv.len() as libc::c_int, argv.as_mut_ptr());
        if info.is_null() {
            return Err(rrd.last_error("rrd_graph failed"));
        }
        (rrd.info_free)(info);
    }
    Ok(())
}
