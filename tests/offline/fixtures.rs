//! Where the tests find the project and LibreNMS's fixtures (shared by
//! both test binaries).

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// LibreNMS's recordings and expected data, which the project does not copy.
pub fn librenms_fixtures() -> PathBuf {
    let dir = std::env::var_os("IRONPOLL_LIBRENMS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/fixtures/librenms"));
    assert!(
        dir.join("snmpsim").is_dir(),
        "LibreNMS fixtures not found at {} (set IRONPOLL_LIBRENMS_FIXTURES to the fixtures directory beside the project)",
        dir.display()
    );
    dir
}
