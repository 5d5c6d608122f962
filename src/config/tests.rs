use super::*;
use serde_json::json;

fn defaults() -> Defaults {
    Defaults {
        mode: Mode::Librenms,
        librenms_dir: PathBuf::from("/opt/librenms"),
    }
}

fn layer(source: Source, strict: bool, values: &[(&str, serde_json::Value)]) -> Layer {
    let mut l = Layer::new(source, strict);
    for (k, v) in values {
        l.set(*k, v.clone());
    }
    l
}

#[test]
fn later_layers_win_and_remember_their_source() {
    let table = config_table_layer(vec![
        ("rrd.step".into(), "60".into()),
        ("rrdcached".into(), "\"unix:/run/rrdcached.sock\"".into()),
        ("snmp.max_oid".into(), "20".into()),
        ("some.php.only.setting".into(), "true".into()),
    ]);
    let file = layer(
        Source::File("/etc/ironpoll.toml".into()),
        true,
        &[("snmp.max_oid", json!(30))],
    );
    let env = env_layer(vec![
        ("IRONPOLL_RRD__HEARTBEAT".to_string(), "120".to_string()),
        (
            "IRONPOLL_POLLER_MODULES__UCD_MIB".to_string(),
            "false".to_string(),
        ),
        ("IRONPOLL_SNMPSIM".to_string(), "/usr/bin/x".to_string()),
        ("PATH".to_string(), "/bin".to_string()),
    ]);
    let s = resolve(&[table, file, env], defaults()).unwrap();
    assert_eq!(s.rrd.step, 60);
    assert_eq!(s.source_of("rrd.step"), Source::ConfigTable);
    assert_eq!(s.rrd.rrdcached, "unix:/run/rrdcached.sock");
    assert_eq!(s.snmp.max_oid, 30);
    assert_eq!(
        s.source_of("snmp.max_oid"),
        Source::File("/etc/ironpoll.toml".into())
    );
    assert_eq!(s.rrd.heartbeat, 120);
    assert_eq!(s.modules.global.get("ucd-mib"), Some(&false));
    assert_eq!(s.rrd.dir, PathBuf::from("/opt/librenms/rrd"));
    assert_eq!(s.source_of("rrd_dir"), Source::Default);
}

#[test]
fn a_bad_value_names_its_key_and_source() {
    let env = env_layer(vec![("IRONPOLL_RRD__STEP".to_string(), "five".to_string())]);
    let e = resolve(&[env], defaults()).unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid rrd.step = \"five\" (from environment IRONPOLL_RRD__STEP): expected a whole number"
    );
    let table = config_table_layer(vec![("rrd_rra".into(), "\"RRA:AVERAGE:0.5:1\"".into())]);
    let e = resolve(&[table], defaults()).unwrap_err().to_string();
    assert!(
        e.contains("rrd_rra") && e.contains("LibreNMS config table"),
        "{e}"
    );
    let file = layer(
        Source::File("x.toml".into()),
        true,
        &[("rrd.stepp", json!(60))],
    );
    let e = resolve(&[file], defaults()).unwrap_err().to_string();
    assert_eq!(e, "unknown setting rrd.stepp (from x.toml)");
    let table = config_table_layer(vec![("rrd.step".into(), "900".into())]);
    let e = resolve(&[table], defaults()).unwrap_err().to_string();
    assert!(
        e.contains("rrd.heartbeat") && e.contains("below rrd.step"),
        "{e}"
    );
    let bad_regex = layer(Source::Flag, true, &[("bad_if_regexp", json!(["/([a-z/"]))]);
    assert!(resolve(&[bad_regex], defaults()).is_err());
}

#[test]
fn secrets_are_masked_in_output_and_errors() {
    let l = layer(
        Source::Flag,
        true,
        &[
            ("db.password", json!("s3cret-pass")),
            (
                "db.url",
                json!("mysql://librenms:s3cret-pass@db:3306/librenms"),
            ),
            ("db.port", json!("notaport")),
        ],
    );
    let e = resolve(std::slice::from_ref(&l), defaults())
        .unwrap_err()
        .to_string();
    assert!(!e.contains("s3cret"), "{e}");
    let ok = layer(
        Source::Flag,
        true,
        &[
            ("db.password", json!("s3cret-pass")),
            (
                "db.url",
                json!("mysql://librenms:s3cret-pass@db:3306/librenms"),
            ),
        ],
    );
    let s = resolve(&[ok], defaults()).unwrap();
    let text = format!("{:?}", s.entries());
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("********"));
    let pw = layer(Source::Flag, true, &[("db.password", json!(12))]);
    let e = resolve(
        &[
            pw,
            layer(Source::Flag, true, &[("redis.password", json!([1]))]),
        ],
        defaults(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("********") && !e.contains("[1]"), "{e}");
}

#[test]
fn dotenv_and_toml_files_become_layers() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "DB_HOST=db1\nDB_PASSWORD='pw'\nNODE_ID=abc123\nAPP_KEY=x\nREDIS_PORT=6380\n",
    )
    .unwrap();
    let toml = dir.path().join("ironpoll.toml");
    std::fs::write(
        &toml,
        "rrd_dir = \"/srv/rrd\"\n[rrd]\nstep = 60\nheartbeat = 120\n[poller_modules]\nports = false\n[snmp]\ntimeout = 2.5\n",
    )
    .unwrap();
    let s = resolve(
        &[dotenv_layer(&env).unwrap(), file_layer(&toml).unwrap()],
        defaults(),
    )
    .unwrap();
    assert_eq!(s.db.host, "db1");
    assert_eq!(s.db.password.expose(), b"pw");
    assert_eq!(s.node_id, "abc123");
    assert_eq!(s.redis.port, 6380);
    assert_eq!(s.rrd.dir, PathBuf::from("/srv/rrd"));
    assert_eq!((s.rrd.step, s.rrd.heartbeat), (60, 120));
    assert_eq!(s.modules.global.get("ports"), Some(&false));
    assert_eq!(s.snmp.timeout_secs, 2.5);
    std::fs::write(&toml, "[rrd\nstep=1").unwrap();
    let e = file_layer(&toml).unwrap_err().to_string();
    assert!(e.contains("ironpoll.toml"), "{e}");
}

#[test]
fn os_overrides_and_groups_parse() {
    let table = config_table_layer(vec![
        ("os.ios.poller_modules.bgp-peers".into(), "false".into()),
        ("distributed_poller_group".into(), "\"1,3\"".into()),
        ("graphing.availability".into(), "[86400, 604800]".into()),
    ]);
    let s = resolve(&[table], defaults()).unwrap();
    assert!(!s.modules.os["ios"]["bgp-peers"]);
    assert_eq!(s.poller.groups, vec![1, 3]);
    assert_eq!(s.availability.durations, vec![86_400, 604_800]);
}

#[test]
fn os_definitions_give_per_os_module_defaults_below_the_config_table() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join(super::os_definitions::DIR);
    std::fs::create_dir_all(&defs).unwrap();
    // Shaped like LibreNMS's definitions: detection rules ironpoll ignores,
    // `poller_modules` it reads.
    std::fs::write(
        defs.join("edgeswitch.yaml"),
        "os: edgeswitch\ntext: 'Edge Switch'\ntype: network\ndiscovery:\n  - sysObjectID: .1.3.6.1.4.1.4413\npoller_modules:\n  bgp-peers: false\n  stp: true\n",
    )
    .unwrap();
    // No `os:` key: the file name is the OS.
    std::fs::write(
        defs.join("quietos.yaml"),
        "poller_modules:\n  ports: false\n",
    )
    .unwrap();
    std::fs::write(defs.join("plain.yaml"), "os: plain\ntype: server\n").unwrap();
    std::fs::write(defs.join("broken.yaml"), "os: [unclosed\n").unwrap();
    std::fs::write(defs.join("notes.txt"), "not a definition").unwrap();

    let read = super::os_definitions::read(dir.path()).unwrap();
    assert_eq!(read.files, 4);
    assert_eq!(read.unreadable.len(), 1);
    assert!(read.unreadable[0].0.ends_with("broken.yaml"));
    let table = config_table_layer(vec![(
        "os.edgeswitch.poller_modules.stp".into(),
        "false".into(),
    )]);
    let s = resolve(&[read.layer, table], defaults()).unwrap();
    assert!(!s.modules.os["edgeswitch"]["bgp-peers"]);
    // The config table wins over the definition.
    assert!(!s.modules.os["edgeswitch"]["stp"]);
    assert_eq!(
        s.source_of("os.edgeswitch.poller_modules.bgp-peers"),
        Source::OsDefinitions(defs.clone())
    );
    assert!(!s.modules.os["quietos"]["ports"]);
    assert!(!s.modules.os.contains_key("plain"));

    // A value that is not a boolean is refused with the file's directory
    // as its source.
    std::fs::write(
        defs.join("odd.yaml"),
        "os: odd\npoller_modules:\n  ports: sometimes\n",
    )
    .unwrap();
    let e = resolve(
        &[super::os_definitions::read(dir.path()).unwrap().layer],
        defaults(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("os.odd.poller_modules.ports"), "{e}");
    assert!(e.contains("OS definitions"), "{e}");

    assert!(super::os_definitions::read(&dir.path().join("nowhere")).is_none());
}

#[test]
fn ports_options_ironpoll_does_not_poll_are_said() {
    let s = resolve(&[], defaults()).unwrap();
    assert!(s.ports_not_native().is_empty());
    let table = config_table_layer(vec![
        ("enable_ports_poe".into(), "true".into()),
        ("enable_ports_etherlike".into(), "true".into()),
    ]);
    let s = resolve(&[table], defaults()).unwrap();
    let notes = s.ports_not_native();
    assert_eq!(notes.len(), 2);
    assert!(notes[0].starts_with("enable_ports_poe is on"), "{notes:?}");
    assert!(
        notes[1].starts_with("enable_ports_etherlike is on"),
        "{notes:?}"
    );
}

#[test]
fn distributed_polling_uses_redis_when_configured_else_memcached() {
    let with = |values: &[(&str, serde_json::Value)]| {
        resolve(&[layer(Source::Flag, true, values)], defaults())
            .unwrap()
            .coordination()
    };
    assert_eq!(with(&[]), Coordination::Alone);
    let on = ("distributed_poller", json!("true"));
    // Redis's built-in localhost does not count: it was never configured.
    assert_eq!(with(std::slice::from_ref(&on)), Coordination::Wrapper);
    for redis in ["redis.host", "redis.socket", "redis.sentinel"] {
        assert_eq!(
            with(&[on.clone(), (redis, json!("127.0.0.1:26379"))]),
            Coordination::Dispatcher,
            "{redis}"
        );
    }
    let standalone = resolve(
        &[layer(
            Source::Flag,
            true,
            &[on, ("redis.host", json!("r1"))],
        )],
        Defaults {
            mode: Mode::Standalone,
            librenms_dir: PathBuf::from("/opt/librenms"),
        },
    )
    .unwrap();
    assert_eq!(standalone.coordination(), Coordination::Alone);
}
