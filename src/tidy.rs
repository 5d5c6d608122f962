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

#[test]
fn sans_io_modules_import_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in SANS_IO {
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

#[test]
fn unsafe_code_stays_in_its_few_places() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut users = Vec::new();
    for dir in ["src", "src/snmp", "src/sim", "src/cli"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("unsafe {") && !path.ends_with("tidy.rs") {
                    users.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    users.sort();
    assert_eq!(
        users,
        vec![
            "src/sim/server.rs",
            "src/snmp/transport.rs",
            "src/telemetry.rs",
            "src/udp.rs"
        ],
        "raw system calls belong in src/udp.rs (UDP) and src/telemetry.rs (getrusage); \
         server.rs and transport.rs only register sockets with tokio"
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
