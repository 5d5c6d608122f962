//! librrd, opened with `dlopen` the first time a local RRD file is written
//! or a graph drawn.
//!
//! Linking librrd at build time would load it, and the cairo, pango, glib
//! and font libraries it depends on (some 40 shared objects), into every
//! ironpoll process: 8 ms of a `walk`'s or `get`'s start-up spent on
//! libraries it never calls. Most nodes write through rrdcached and never
//! need librrd at all. Loading it on demand also means building ironpoll
//! needs neither librrd's headers nor libclang for generated bindings.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

use libc::{c_char, c_int, c_ulong, c_void, time_t};

/// The shared object's names: the versioned one a runtime package
/// installs, then the development symlink.
const NAMES: [&str; 2] = ["librrd.so.8", "librrd.so"];

/// The entry points ironpoll uses, with rrd.h's signatures.
pub(super) struct LibRrd {
    pub clear_error: unsafe extern "C" fn(),
    pub get_error: unsafe extern "C" fn() -> *mut c_char,
    pub create_r2: unsafe extern "C" fn(
        filename: *const c_char,
        pdp_step: c_ulong,
        last_up: time_t,
        no_overwrite: c_int,
        sources: *mut *const c_char,
        template: *const c_char,
        argc: c_int,
        argv: *mut *const c_char,
    ) -> c_int,
    pub updatex_r: unsafe extern "C" fn(
        filename: *const c_char,
        template: *const c_char,
        extra_flags: c_int,
        argc: c_int,
        argv: *mut *const c_char,
    ) -> c_int,
    /// Returns an `rrd_info_t` list, or NULL on error.
    pub graph_v: unsafe extern "C" fn(argc: c_int, argv: *mut *mut c_char) -> *mut c_void,
    pub info_free: unsafe extern "C" fn(info: *mut c_void),
}

impl LibRrd {
    /// The message of the last failed call on this thread, or `otherwise`
    /// when librrd has none.
    pub fn last_error(&self, otherwise: &str) -> String {
        // SAFETY: librrd returns its thread's error buffer, NUL-terminated,
        // or NULL.
        let message = unsafe { c_message((self.get_error)()) };
        message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| otherwise.to_string())
    }
}

static LIBRRD: OnceLock<Result<LibRrd, String>> = OnceLock::new();

/// librrd, loaded on first use; the error says what to install.
pub(super) fn librrd() -> Result<&'static LibRrd, String> {
    LIBRRD
        .get_or_init(|| open(&NAMES))
        .as_ref()
        .map_err(Clone::clone)
}

/// Opens the first of `names` that loads.
fn open(names: &[&str]) -> Result<LibRrd, String> {
    let mut tried = Vec::new();
    for &name in names {
        let c_name = CString::new(name).expect("no NUL in a constant");
        // SAFETY: a NUL-terminated name; librrd's initialisers only set up
        // its own state. The handle is never closed, so the symbols below
        // stay valid for the life of the process.
        let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            tried.push(dl_error());
            continue;
        }
        return Ok(LibRrd {
            clear_error: symbol(handle, "rrd_clear_error")?,
            get_error: symbol(handle, "rrd_get_error")?,
            create_r2: symbol(handle, "rrd_create_r2")?,
            updatex_r: symbol(handle, "rrd_updatex_r")?,
            graph_v: symbol(handle, "rrd_graph_v")?,
            info_free: symbol(handle, "rrd_info_free")?,
        });
    }
    Err(format!(
        "cannot load librrd, which local RRD files and graphs need ({}); install RRDtool's \
         library (Debian and Ubuntu: apt-get install rrdtool), or write through rrdcached",
        tried.join("; ")
    ))
}

/// Looks up `name` in `handle` as a function pointer of type `F`.
fn symbol<F: Copy>(handle: *mut c_void, name: &str) -> Result<F, String> {
    // Every F here is an `unsafe extern "C" fn`, the size of a pointer.
    assert_eq!(
        size_of::<F>(),
        size_of::<*mut c_void>(),
        "{name}: not a function pointer"
    );
    let c_name = CString::new(name).expect("no NUL in a symbol name");
    // SAFETY: a live handle from dlopen and a NUL-terminated name.
    let p = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
    if p.is_null() {
        return Err(format!("librrd has no {name}: {}", dl_error()));
    }
    // SAFETY: F is a function pointer type (size checked above) whose
    // signature is rrd.h's declaration of `name`.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

fn dl_error() -> String {
    // SAFETY: dlerror returns a NUL-terminated message or NULL.
    unsafe { c_message(libc::dlerror()) }.unwrap_or_else(|| "unknown dlopen error".to_string())
}

/// A C library's message as a String; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points at a NUL-terminated string.
unsafe fn c_message(p: *const c_char) -> Option<String> {
    // SAFETY: the caller's promise.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_once_and_finds_every_entry_point() {
        let first = librrd().expect("librrd is installed on test machines (misc/lib.sh)");
        let again = librrd().unwrap();
        assert!(std::ptr::eq(first, again));
        // SAFETY: a call with no arguments into the loaded library.
        unsafe { (first.clear_error)() };
        assert_eq!(first.last_error("none"), "none");
    }

    #[test]
    fn a_missing_library_says_what_to_install() {
        let Err(e) = open(&["librrd-not-installed.so.8"]) else {
            panic!("a library that does not exist loaded");
        };
        assert!(e.contains("librrd-not-installed.so.8"), "{e}");
        assert!(e.contains("apt-get install rrdtool"), "{e}");
        assert!(e.contains("rrdcached"), "{e}");
    }

    #[test]
    fn a_missing_symbol_is_an_error_not_a_crash() {
        let c_name = CString::new(NAMES[0]).unwrap();
        // SAFETY: as in open.
        let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!handle.is_null());
        let missing = symbol::<unsafe extern "C" fn()>(handle, "rrd_no_such_call");
        assert!(missing.unwrap_err().contains("rrd_no_such_call"));
    }
}
