//! Architecture invariants that can be checked by reading the source (see
//! ARCHITECTURE.md).

use std::path::Path;

/// Modules that must stay sans-IO: they turn bytes into values and back,
/// and never touch a socket, a runtime, a database or Redis.
const SANS_IO: &[&str] = &[
    "src/snmp/ber.rs",
    "src/snmp/oid.rs",
    "src/snmp/value.rs",
    "src/snmp/pdu.rs",
    "src/snmp/usm.rs",
    "src/snmp/display.rs",
    "src/sim/agent.rs",
    "src/sim/image.rs",
    "src/sim/profile.rs",
    "src/sim/fault.rs",
    "src/sim/snmprec.rs",
    // Poller modules read SNMP through a source and record what they found;
    // the engine does the IO. Every file below these folders.
    "src/modules/",
    "src/librenms/",
    "src/mib/",
];

const IO_MARKERS: &[&str] = &[
    "tokio::net",
    "tokio::io",
    "tokio::spawn",
    "std::net::UdpSocket",
    "std::net::TcpStream",
    "sqlx",
    "redis::",
    "libc::",
];

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn sans_io_modules_import_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = Vec::new();
    for entry in SANS_IO {
        if entry.ends_with('/') {
            let found = rust_files(&root.join(entry));
            assert!(!found.is_empty(), "{entry} has no Rust files");
            files.extend(
                found
                    .iter()
                    .map(|p| p.strip_prefix(root).unwrap().display().to_string()),
            );
        } else {
            files.push(entry.to_string());
        }
    }
    for file in &files {
        let text =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for marker in IO_MARKERS {
            let offending: Vec<usize> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(marker) && !l.trim_start().starts_with("//"))
                .map(|(i, _)| i + 1)
                .collect();
            assert!(
                offending.is_empty(),
                "{file} uses {marker} on lines {offending:?}"
            );
        }
    }
}

/// Files under `src/` (recursively) whose text contains `needle` outside
/// comments, relative to the crate root.
fn files_using(needle: &str) -> Vec<String> {
    fn visit(dir: &Path, root: &Path, needle: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, root, needle, out);
            } else if path.extension().is_some_and(|x| x == "rs") && !path.ends_with("tidy.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if text
                    .lines()
                    .any(|l| l.contains(needle) && !l.trim_start().starts_with("//"))
                {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    visit(&root.join("src"), root, needle, &mut out);
    out.sort();
    out
}

#[test]
fn only_the_db_module_talks_sql_and_only_the_rrd_module_talks_librrd() {
    let sql: Vec<String> = files_using("sqlx")
        .into_iter()
        .filter(|f| !f.starts_with("src/db/"))
        .collect();
    assert!(sql.is_empty(), "sqlx outside src/db: {sql:?}");
    let librrd: Vec<String> = files_using("librrd()")
        .into_iter()
        .chain(files_using("dlopen("))
        .filter(|f| !f.starts_with("src/rrd/"))
        .collect();
    assert!(librrd.is_empty(), "librrd outside src/rrd: {librrd:?}");
}

#[test]
fn unsafe_code_stays_in_its_few_places() {
    // Every file under src/, so a new module cannot slip past.
    let mut users = files_using("unsafe {");
    users.sort();
    assert_eq!(
        users,
        vec![
            "src/alloc.rs",
            "src/config/settings.rs",
            "src/icmp/mod.rs",
            "src/poller/php.rs",
            "src/rrd/graph.rs",
            "src/rrd/librrd.rs",
            "src/rrd/local.rs",
            "src/sim/server.rs",
            "src/snmp/transport.rs",
            "src/telemetry/mod.rs",
            "src/udp.rs"
        ],
        "raw system calls belong in src/udp.rs (UDP), src/telemetry (getrusage, the monotonic clock), \
         src/icmp/mod.rs (ICMP socket options), src/rrd (librrd), src/poller/php.rs \
         (the PHP process group's kill, the effective user), the host name in \
         src/config/settings.rs and mimalloc's options in src/alloc.rs; server.rs and \
         transport.rs only register sockets with tokio"
    );
}

#[test]
fn credentials_never_print_their_secrets() {
    use crate::secret::Secret;
    use crate::snmp::Credentials;
    use crate::snmp::usm::{SecurityLevel, UsmUser};
    let community = Credentials::v2c("s3cr3t-community");
    let user = UsmUser::new(
        "admin",
        SecurityLevel::AuthPriv,
        Some(("SHA".parse().unwrap(), Secret::from("auth-s3cr3t"))),
        Some(("AES".parse().unwrap(), Secret::from("priv-s3cr3t"))),
    )
    .unwrap();
    let v3 = Credentials::Usm {
        user,
        context: Vec::new(),
    };
    let text = format!("{community:?} {v3:?}");
    assert!(!text.contains("s3cr3t"), "{text}");
}
