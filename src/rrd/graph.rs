//! Graphs through librrd: `rrd_graph_v` with rrdtool's own arguments.

use std::ffi::{CStr, CString};
use std::path::Path;

use parking_lot::Mutex;

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
    // SAFETY: argv points at NUL-terminated strings alive for the call;
    // librrd only reads them. The info list it returns is freed here.
    unsafe {
        rrd_sys::rrd_clear_error();
        let info = rrd_sys::rrd_graph_v(argv.len() as libc::c_int, argv.as_mut_ptr());
        if info.is_null() {
            let e = rrd_sys::rrd_get_error();
            return Err(if e.is_null() {
                "rrd_graph failed".to_string()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            });
        }
        rrd_sys::rrd_info_free(info);
    }
    Ok(())
}
