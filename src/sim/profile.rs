//! Generated device profiles: what a fleet device serves without a recording.
//!
//! * `switch48`: a 48-port access switch with four 10G uplinks and a VLAN
//!   interface (system group, ifTable, ifXTable, EtherLike duplex, Q-BRIDGE PVID).
//! * `chassis500`: a 500-port modular chassis with ENTITY-MIB inventory and
//!   a hundred ENTITY-SENSOR-MIB sensors.
//! * `linux`: a Linux server as net-snmp's agent shows it (interfaces,
//!   HOST-RESOURCES-MIB, UCD-SNMP-MIB memory, load, CPU, disks, disk I/O).
//!
//! Traffic counters grow at a share of each port's speed that differs per port
//! and per device (from the device seed); ports that are down stay still.

use std::str::FromStr;

use super::image::{Image, Source, mix, unit};
use crate::snmp::{Oid, Value, oid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    Switch48,
    Chassis500,
    Linux,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Switch48, Profile::Chassis500, Profile::Linux];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Switch48 => "switch48",
            Profile::Chassis500 => "chassis500",
            Profile::Linux => "linux",
        }
    }

    /// Builds the profile's image. `seed` picks which ports are up and how
    /// busy each is; devices sharing the image vary further by their own seed.
    pub fn image(self, seed: u64) -> Image {
        match self {
            Profile::Switch48 => switch48(seed),
            Profile::Chassis500 => chassis500(seed),
            Profile::Linux => linux(seed),
        }
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Profile, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?} (switch48, chassis500, linux)"))
    }
}

struct Builder {
    items: Vec<(Oid, Source)>,
}

impl Builder {
    fn new() -> Builder {
        Builder { items: Vec::new() }
    }

    fn fixed(&mut self, oid: Oid, v: Value) {
        self.items.push((oid, Source::Fixed(v)));
    }

    fn source(&mut self, oid: Oid, s: Source) {
        self.items.push((oid, s));
    }

    fn int(&mut self, o: &str, v: i64) {
        self.fixed(oid(o), Value::Integer(v));
    }

    fn int_at(&mut self, o: Oid, v: i64) {
        self.fixed(o, Value::Integer(v));
    }

    fn text(&mut self, o: &str, v: &str) {
        self.fixed(oid(o), Value::OctetString(v.as_bytes().to_vec()));
    }

    fn build(self, name: &str) -> Image {
        Image::new(name, self.items)
    }
}

fn system_group(b: &mut Builder, descr: &str, object_id: &str, location: &str, services: i64) {
    b.text("1.3.6.1.2.1.1.1.0", descr);
    b.fixed(oid("1.3.6.1.2.1.1.2.0"), Value::ObjectId(oid(object_id)));
    b.source(oid("1.3.6.1.2.1.1.3.0"), Source::Uptime { ticks: true });
    b.text("1.3.6.1.2.1.1.4.0", "noc@example.net");
    b.source(oid("1.3.6.1.2.1.1.5.0"), Source::DeviceName);
    b.text("1.3.6.1.2.1.1.6.0", location);
    b.int("1.3.6.1.2.1.1.7.0", services);
    b.fixed(oid("1.3.6.1.2.1.1.8.0"), Value::TimeTicks(0));
    // SNMP-FRAMEWORK-MIB snmpEngine group, which LibreNMS's core module reads.
    b.source(oid("1.3.6.1.6.3.10.2.1.1.0"), Source::EngineId);
    b.source(oid("1.3.6.1.6.3.10.2.1.2.0"), Source::EngineBoots);
    b.source(
        oid("1.3.6.1.6.3.10.2.1.3.0"),
        Source::Uptime { ticks: false },
    );
    b.int("1.3.6.1.6.3.10.2.1.4.0", 1500);
}

/// One row of ifTable/ifXTable.
struct Port {
    index: u32,
    descr: String,
    name: String,
    alias: String,
    if_type: i64,
    mtu: i64,
    speed_bps: u64,
    admin_up: bool,
    oper_up: bool,
    /// Share of the speed in use, each way.
    load: f64,
    has_mac: bool,
}

fn counter(b: &mut Builder, o: Oid, key: u64, wide: bool, rate: f64) {
    b.source(
        o,
        Source::Counter {
            key,
            wide,
            base: 0,
            rate,
            swing: 0.4,
        },
    );
}

fn interfaces(b: &mut Builder, ports: &[Port]) {
    let if_entry = |c: u32, i: u32| oid("1.3.6.1.2.1.2.2.1").join(&[c, i]);
    let if_x = |c: u32, i: u32| oid("1.3.6.1.2.1.31.1.1.1").join(&[c, i]);
    b.int("1.3.6.1.2.1.2.1.0", ports.len() as i64);
    for p in ports {
        let i = p.index;
        let key = |n: u64| ((i as u64) << 8) | n;
        let running = p.oper_up && p.admin_up;
        let octets = if running {
            p.speed_bps as f64 / 8.0 * p.load
        } else {
            0.0
        };
        let packets = octets / 700.0;
        let multicast = packets * 0.01;
        let broadcast = packets * 0.004;
        let errors = if running { 0.002 } else { 0.0 };
        b.fixed(if_entry(1, i), Value::Integer(i as i64));
        b.fixed(
            if_entry(2, i),
            Value::OctetString(p.descr.clone().into_bytes()),
        );
        b.fixed(if_entry(3, i), Value::Integer(p.if_type));
        b.fixed(if_entry(4, i), Value::Integer(p.mtu));
        b.fixed(
            if_entry(5, i),
            Value::Gauge32(p.speed_bps.min(u32::MAX as u64) as u32),
        );
        if p.has_mac {
            b.source(if_entry(6, i), Source::MacAddress { index: i });
        } else {
            b.fixed(if_entry(6, i), Value::OctetString(Vec::new()));
        }
        b.fixed(
            if_entry(7, i),
            Value::Integer(if p.admin_up { 1 } else { 2 }),
        );
        b.fixed(
            if_entry(8, i),
            Value::Integer(if p.oper_up { 1 } else { 2 }),
        );
        b.fixed(if_entry(9, i), Value::TimeTicks(1234 + i * 17));
        // Counter32 views share keys with the HC counters below.
        counter(b, if_entry(10, i), key(1), false, octets);
        counter(b, if_entry(11, i), key(2), false, packets);
        counter(b, if_entry(12, i), key(3), false, multicast + broadcast);
        counter(b, if_entry(13, i), key(4), false, errors / 2.0);
        counter(b, if_entry(14, i), key(5), false, errors);
        counter(b, if_entry(15, i), key(6), false, 0.0);
        counter(b, if_entry(16, i), key(7), false, octets * 0.8);
        counter(b, if_entry(17, i), key(8), false, packets * 0.8);
        counter(
            b,
            if_entry(18, i),
            key(9),
            false,
            (multicast + broadcast) * 0.5,
        );
        counter(b, if_entry(19, i), key(10), false, errors / 3.0);
        counter(b, if_entry(20, i), key(11), false, errors / 4.0);
        b.fixed(if_entry(21, i), Value::Gauge32(0));
        b.fixed(if_entry(22, i), Value::ObjectId(oid("0.0")));

        b.fixed(if_x(1, i), Value::OctetString(p.name.clone().into_bytes()));
        counter(b, if_x(2, i), key(12), false, multicast);
        counter(b, if_x(3, i), key(13), false, broadcast);
        counter(b, if_x(4, i), key(14), false, multicast * 0.5);
        counter(b, if_x(5, i), key(15), false, broadcast * 0.5);
        counter(b, if_x(6, i), key(1), true, octets);
        counter(b, if_x(7, i), key(2), true, packets);
        counter(b, if_x(8, i), key(12), true, multicast);
        counter(b, if_x(9, i), key(13), true, broadcast);
        counter(b, if_x(10, i), key(7), true, octets * 0.8);
        counter(b, if_x(11, i), key(8), true, packets * 0.8);
        counter(b, if_x(12, i), key(14), true, multicast * 0.5);
        counter(b, if_x(13, i), key(15), true, broadcast * 0.5);
        b.fixed(if_x(14, i), Value::Integer(1));
        b.fixed(
            if_x(15, i),
            Value::Gauge32((p.speed_bps / 1_000_000) as u32),
        );
        b.fixed(if_x(16, i), Value::Integer(2));
        b.fixed(if_x(17, i), Value::Integer(if p.has_mac { 1 } else { 2 }));
        b.fixed(
            if_x(18, i),
            Value::OctetString(p.alias.clone().into_bytes()),
        );
        b.fixed(if_x(19, i), Value::TimeTicks(0));
    }
}

/// EtherLike-MIB dot3StatsDuplexStatus and Q-BRIDGE-MIB dot1qPvid for the
/// Ethernet ports, which LibreNMS's ports module reads.
fn ethernet_extras(b: &mut Builder, ports: &[Port], seed: u64) {
    for p in ports.iter().filter(|p| p.if_type == 6) {
        b.fixed(
            oid("1.3.6.1.2.1.10.7.2.1.19").child(p.index),
            Value::Integer(if p.oper_up { 3 } else { 1 }),
        );
        let vlan = [1, 10, 20, 30][(mix(seed, p.index as u64) % 4) as usize];
        b.fixed(
            oid("1.3.6.1.2.1.17.7.1.4.5.1.1").child(p.index),
            Value::Gauge32(vlan),
        );
    }
}

fn access_port(seed: u64, index: u32, descr: String, name: String, speed_bps: u64) -> Port {
    let r = unit(seed, index as u64);
    Port {
        index,
        descr,
        name,
        alias: if r < 0.5 {
            format!("desk-{index:03}")
        } else {
            String::new()
        },
        if_type: 6,
        mtu: 1500,
        speed_bps,
        admin_up: r < 0.9,
        oper_up: r < 0.7,
        load: 0.01 + 0.3 * unit(seed, index as u64 ^ 0xfeed),
        has_mac: true,
    }
}

fn switch48(seed: u64) -> Image {
    let mut b = Builder::new();
    system_group(
        &mut b,
        "Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E4, RELEASE SOFTWARE (fc2)",
        "1.3.6.1.4.1.9.1.1208",
        "Building 1, floor 2, rack 3",
        2,
    );
    let mut ports = Vec::new();
    for i in 1..=48u32 {
        ports.push(access_port(
            seed,
            10100 + i,
            format!("GigabitEthernet1/0/{i}"),
            format!("Gi1/0/{i}"),
            1_000_000_000,
        ));
    }
    for i in 1..=4u32 {
        let mut p = access_port(
            seed,
            10200 + i,
            format!("TenGigabitEthernet1/1/{i}"),
            format!("Te1/1/{i}"),
            10_000_000_000,
        );
        p.alias = format!("uplink-{i}");
        p.admin_up = true;
        p.oper_up = i <= 2;
        ports.push(p);
    }
    ports.push(Port {
        index: 1,
        descr: "Vlan1".into(),
        name: "Vl1".into(),
        alias: "management".into(),
        if_type: 53,
        mtu: 1500,
        speed_bps: 1_000_000_000,
        admin_up: true,
        oper_up: true,
        load: 0.0005,
        has_mac: true,
    });
    interfaces(&mut b, &ports);
    ethernet_extras(&mut b, &ports, seed);
    b.build("switch48")
}

fn chassis500(seed: u64) -> Image {
    let mut b = Builder::new();
    system_group(
        &mut b,
        "Cisco IOS Software [Bengaluru], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.6.4, RELEASE SOFTWARE (fc1)",
        "1.3.6.1.4.1.9.1.2494",
        "Data centre A, row 4",
        6,
    );
    let mut ports = Vec::new();
    for module in 1..=10u32 {
        for port in 1..=48u32 {
            ports.push(access_port(
                seed,
                module * 1000 + port,
                format!("GigabitEthernet{module}/0/{port}"),
                format!("Gi{module}/0/{port}"),
                1_000_000_000,
            ));
        }
    }
    for port in 1..=20u32 {
        let mut p = access_port(
            seed,
            20000 + port,
            format!("TwentyFiveGigE1/1/{port}"),
            format!("Twe1/1/{port}"),
            25_000_000_000,
        );
        p.load = 0.2 + 0.3 * unit(seed, port as u64 ^ 0xbeef);
        ports.push(p);
    }
    interfaces(&mut b, &ports);
    ethernet_extras(&mut b, &ports, seed);
    // ENTITY-MIB entPhysicalTable: chassis, supervisor, line cards, power, fans.
    let ent = |c: u32, i: u32| oid("1.3.6.1.2.1.47.1.1.1.1").join(&[c, i]);
    let add = |b: &mut Builder,
               i: u32,
               descr: &str,
               class: i64,
               parent: u32,
               pos: i64,
               name: &str,
               model: &str| {
        b.fixed(ent(2, i), Value::OctetString(descr.as_bytes().to_vec()));
        b.fixed(ent(3, i), Value::ObjectId(oid("1.3.6.1.4.1.9.12.3.1.3.1")));
        b.fixed(ent(4, i), Value::Integer(parent as i64));
        b.fixed(ent(5, i), Value::Integer(class));
        b.fixed(ent(6, i), Value::Integer(pos));
        b.fixed(ent(7, i), Value::OctetString(name.as_bytes().to_vec()));
        b.fixed(ent(8, i), Value::OctetString(b"V01".to_vec()));
        b.fixed(ent(9, i), Value::OctetString(Vec::new()));
        b.fixed(ent(10, i), Value::OctetString(b"17.6.4".to_vec()));
        b.fixed(
            ent(11, i),
            Value::OctetString(format!("SIM{:08X}", mix(seed, i as u64) as u32).into_bytes()),
        );
        b.fixed(
            ent(12, i),
            Value::OctetString(b"Cisco Systems, Inc.".to_vec()),
        );
        b.fixed(ent(13, i), Value::OctetString(model.as_bytes().to_vec()));
        b.fixed(ent(16, i), Value::Integer(if class == 3 { 2 } else { 1 }));
    };
    add(
        &mut b,
        1,
        "Cisco Catalyst 9410R Switch",
        3,
        0,
        -1,
        "Chassis",
        "C9410R",
    );
    for slot in 1..=10u32 {
        add(
            &mut b,
            1000 + slot,
            "48-Port UPOE 10/100/1000 (RJ-45)",
            9,
            1,
            slot as i64,
            &format!("Linecard(slot {slot})"),
            "C9400-LC-48U",
        );
    }
    for ps in 1..=4u32 {
        add(
            &mut b,
            2000 + ps,
            "Cisco Catalyst 9400 Series 3200W AC Power Supply",
            6,
            1,
            ps as i64,
            &format!("Power Supply Module {ps}"),
            "C9400-PWR-3200AC",
        );
    }
    add(
        &mut b,
        3001,
        "Cisco Catalyst 9400 Series Fan Tray",
        7,
        1,
        1,
        "Fan Tray",
        "C9404R-FAN",
    );
    // ENTITY-SENSOR-MIB entPhySensorTable: a hundred sensors.
    let sensor = |c: u32, i: u32| oid("1.3.6.1.2.1.99.1.1.1").join(&[c, i]);
    for s in CHASSIS_SENSORS {
        for n in 0..s.count {
            let i = s.first + n;
            b.int_at(sensor(1, i), s.sensor_type);
            b.int_at(sensor(2, i), 9); // units
            b.int_at(sensor(3, i), s.precision);
            b.source(
                sensor(4, i),
                Source::Gauge {
                    mid: s.mid,
                    swing: s.mid * 0.05,
                    integer: true,
                },
            );
            // ok(1), except one sensor in twenty unavailable(2).
            b.int_at(sensor(5, i), if i % 20 == 7 { 2 } else { 1 });
        }
    }
    b.build("chassis500")
}

/// The sensors of `chassis500`: entity index range, ENTITY-SENSOR-MIB type
/// and precision, LibreNMS class and divisor, typical raw value.
struct SensorGroup {
    first: u32,
    count: u32,
    sensor_type: i64,
    precision: i64,
    class: &'static str,
    divisor: i64,
    mid: f64,
    limits: (f64, f64),
}

const CHASSIS_SENSORS: [SensorGroup; 4] = [
    SensorGroup {
        first: 5001,
        count: 40,
        sensor_type: 8, // celsius
        precision: 1,
        class: "temperature",
        divisor: 10,
        mid: 420.0,
        limits: (5.0, 70.0),
    },
    SensorGroup {
        first: 5101,
        count: 20,
        sensor_type: 10, // rpm
        precision: 0,
        class: "fanspeed",
        divisor: 1,
        mid: 6200.0,
        limits: (1000.0, 12000.0),
    },
    SensorGroup {
        first: 5201,
        count: 20,
        sensor_type: 4, // voltsDC
        precision: 2,
        class: "voltage",
        divisor: 100,
        mid: 1200.0,
        limits: (11.4, 12.6),
    },
    SensorGroup {
        first: 5301,
        count: 10,
        sensor_type: 6, // watts
        precision: 0,
        class: "power",
        divisor: 1,
        mid: 650.0,
        limits: (0.0, 3200.0),
    },
];

/// A row LibreNMS's discovery would store for a profile device, for the
/// modules that poll what discovery found (processors, mempools, storage,
/// sensors). `device_id` is the caller's to add; a state sensor names its
/// state index and translations.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub table: &'static str,
    pub row: Vec<(&'static str, crate::db::Val)>,
    pub state: Option<(&'static str, &'static [StateTranslation])>,
}

/// A state's value, name and LibreNMS generic state (0 ok, 1 warning, 2
/// critical).
pub type StateTranslation = (i64, &'static str, i64);

/// ENTITY-SENSOR-MIB's entPhySensorOperStatus: value, name, LibreNMS's
/// generic state (0 ok, 1 warning, 2 critical).
const ENTITY_SENSOR_STATES: &[StateTranslation] = &[
    (1, "ok", 0),
    (2, "unavailable", 1),
    (3, "nonoperational", 2),
];

impl Profile {
    /// What LibreNMS's discovery would find on a device of this profile.
    pub fn discovered(self) -> Vec<Discovered> {
        use crate::db::Val;
        let row = |table, row: Vec<(&'static str, Val)>| Discovered {
            table,
            row,
            state: None,
        };
        let t = |s: &str| Val::text(s);
        let mut out = Vec::new();
        match self {
            Profile::Switch48 => {}
            Profile::Chassis500 => {
                for s in CHASSIS_SENSORS {
                    for n in 0..s.count {
                        let i = s.first + n;
                        out.push(row(
                            "sensors",
                            vec![
                                ("sensor_class", t(s.class)),
                                ("poller_type", t("snmp")),
                                ("sensor_oid", t(&format!(".1.3.6.1.2.1.99.1.1.1.4.{i}"))),
                                ("sensor_index", t(&i.to_string())),
                                ("sensor_type", t("entity-sensor")),
                                ("sensor_descr", t(&format!("{} {i}", s.class))),
                                ("sensor_divisor", Val::Int(s.divisor)),
                                ("sensor_multiplier", Val::Int(1)),
                                ("sensor_limit_low", Val::Float(s.limits.0)),
                                ("sensor_limit", Val::Float(s.limits.1)),
                                ("entPhysicalIndex", t(&i.to_string())),
                            ],
                        ));
                    }
                }
                for i in (5001..5011).chain(5101..5111) {
                    out.push(Discovered {
                        table: "sensors",
                        row: vec![
                            ("sensor_class", t("state")),
                            ("poller_type", t("snmp")),
                            ("sensor_oid", t(&format!(".1.3.6.1.2.1.99.1.1.1.5.{i}"))),
                            ("sensor_index", t(&i.to_string())),
                            ("sensor_type", t("entPhySensorOperStatus")),
                            ("sensor_descr", t(&format!("Sensor {i} status"))),
                        ],
                        state: Some(("entPhySensorOperStatus", ENTITY_SENSOR_STATES)),
                    });
                }
            }
            Profile::Linux => {
                for i in [196_608u32, 196_609] {
                    out.push(row(
                        "processors",
                        vec![
                            ("processor_oid", t(&format!(".1.3.6.1.2.1.25.3.3.1.2.{i}"))),
                            ("processor_index", t(&i.to_string())),
                            ("processor_type", t("hr")),
                            ("processor_descr", t("Intel Xeon Silver 4314 @ 2.40GHz")),
                            ("processor_precision", Val::Int(1)),
                            ("processor_usage", Val::Int(0)),
                            ("hrDeviceIndex", Val::Int(i64::from(i))),
                        ],
                    ));
                }
                for (i, class, descr) in [
                    (1, "system", "Physical memory"),
                    (3, "virtual", "Virtual memory"),
                    (6, "buffers", "Memory buffers"),
                    (7, "cached", "Cached memory"),
                ] {
                    out.push(row(
                        "mempools",
                        vec![
                            ("mempool_index", t(&i.to_string())),
                            ("mempool_type", t("hrstorage")),
                            ("mempool_class", t(class)),
                            ("mempool_precision", Val::Int(1024)),
                            ("mempool_descr", t(descr)),
                            (
                                "mempool_used_oid",
                                t(&format!(".1.3.6.1.2.1.25.2.3.1.6.{i}")),
                            ),
                            (
                                "mempool_total_oid",
                                t(&format!(".1.3.6.1.2.1.25.2.3.1.5.{i}")),
                            ),
                            ("mempool_perc", Val::Int(0)),
                            ("mempool_used", Val::Int(0)),
                            ("mempool_free", Val::Int(0)),
                            ("mempool_total", Val::Int(0)),
                        ],
                    ));
                }
                for (i, descr, units, size) in [
                    (31u32, "/", 4096i64, 25_000_000i64),
                    (36, "/boot", 1024, 480_000),
                ] {
                    out.push(row(
                        "storage",
                        vec![
                            ("type", t("hrstorage")),
                            ("storage_index", t(&i.to_string())),
                            ("storage_type", t("hrStorageFixedDisk")),
                            ("storage_descr", t(descr)),
                            ("storage_size", Val::Int(units * size)),
                            ("storage_units", Val::Int(units)),
                            (
                                "storage_used_oid",
                                t(&format!(".1.3.6.1.2.1.25.2.3.1.6.{i}")),
                            ),
                        ],
                    ));
                }
            }
        }
        out
    }
}

fn linux(seed: u64) -> Image {
    let mut b = Builder::new();
    system_group(
        &mut b,
        "Linux sim 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22) x86_64",
        "1.3.6.1.4.1.8072.3.2.10",
        "Server room, rack 12",
        72,
    );
    let ports = vec![
        Port {
            index: 1,
            descr: "lo".into(),
            name: "lo".into(),
            alias: String::new(),
            if_type: 24,
            mtu: 65536,
            speed_bps: 10_000_000,
            admin_up: true,
            oper_up: true,
            load: 0.01,
            has_mac: false,
        },
        Port {
            index: 2,
            descr: "eth0".into(),
            name: "eth0".into(),
            alias: String::new(),
            if_type: 6,
            mtu: 1500,
            speed_bps: 1_000_000_000,
            admin_up: true,
            oper_up: true,
            load: 0.05 + 0.2 * unit(seed, 2),
            has_mac: true,
        },
        Port {
            index: 3,
            descr: "eth1".into(),
            name: "eth1".into(),
            alias: String::new(),
            if_type: 6,
            mtu: 1500,
            speed_bps: 1_000_000_000,
            admin_up: true,
            oper_up: false,
            load: 0.0,
            has_mac: true,
        },
    ];
    interfaces(&mut b, &ports);

    // HOST-RESOURCES-MIB.
    b.source(oid("1.3.6.1.2.1.25.1.1.0"), Source::Uptime { ticks: true });
    b.int("1.3.6.1.2.1.25.1.3.0", 393_216);
    b.source(
        oid("1.3.6.1.2.1.25.1.5.0"),
        Source::Gauge {
            mid: 3.0,
            swing: 2.0,
            integer: false,
        },
    );
    b.source(
        oid("1.3.6.1.2.1.25.1.6.0"),
        Source::Gauge {
            mid: 180.0,
            swing: 40.0,
            integer: false,
        },
    );
    b.int("1.3.6.1.2.1.25.1.7.0", 0);
    let mem_kb: i64 = 16_384_000;
    b.int("1.3.6.1.2.1.25.2.2.0", mem_kb);
    let storage = |c: u32, i: u32| oid("1.3.6.1.2.1.25.2.3.1").join(&[c, i]);
    let stores: [(u32, &str, &str, i64, i64, f64); 6] = [
        (
            1,
            "1.3.6.1.2.1.25.2.1.2",
            "Physical memory",
            1024,
            mem_kb,
            0.6,
        ),
        (
            3,
            "1.3.6.1.2.1.25.2.1.3",
            "Virtual memory",
            1024,
            mem_kb + 2_097_148,
            0.5,
        ),
        (
            6,
            "1.3.6.1.2.1.25.2.1.1",
            "Memory buffers",
            1024,
            mem_kb,
            0.02,
        ),
        (
            7,
            "1.3.6.1.2.1.25.2.1.1",
            "Cached memory",
            1024,
            6_000_000,
            1.0,
        ),
        (31, "1.3.6.1.2.1.25.2.1.4", "/", 4096, 25_000_000, 0.4),
        (36, "1.3.6.1.2.1.25.2.1.4", "/boot", 1024, 480_000, 0.2),
    ];
    for (i, kind, descr, units, size, used) in stores {
        b.fixed(storage(1, i), Value::Integer(i as i64));
        b.fixed(storage(2, i), Value::ObjectId(oid(kind)));
        b.fixed(storage(3, i), Value::OctetString(descr.as_bytes().to_vec()));
        b.fixed(storage(4, i), Value::Integer(units));
        b.fixed(storage(5, i), Value::Integer(size));
        let mid = size as f64 * used;
        b.source(
            storage(6, i),
            Source::Gauge {
                mid,
                swing: mid * 0.05,
                integer: true,
            },
        );
        b.fixed(storage(7, i), Value::Counter32(0));
    }
    let device = |c: u32, i: u32| oid("1.3.6.1.2.1.25.3.2.1").join(&[c, i]);
    for (i, kind, descr) in [
        (
            196_608u32,
            "1.3.6.1.2.1.25.3.1.3",
            "GenuineIntel: Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz",
        ),
        (
            196_609,
            "1.3.6.1.2.1.25.3.1.3",
            "GenuineIntel: Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz",
        ),
        (262_145, "1.3.6.1.2.1.25.3.1.4", "network interface lo"),
        (262_146, "1.3.6.1.2.1.25.3.1.4", "network interface eth0"),
    ] {
        b.fixed(device(1, i), Value::Integer(i as i64));
        b.fixed(device(2, i), Value::ObjectId(oid(kind)));
        b.fixed(device(3, i), Value::OctetString(descr.as_bytes().to_vec()));
        b.fixed(device(4, i), Value::ObjectId(oid("0.0")));
        b.fixed(device(5, i), Value::Integer(2));
        b.fixed(device(6, i), Value::Counter32(0));
    }
    for i in [196_608u32, 196_609] {
        b.fixed(
            oid("1.3.6.1.2.1.25.3.3.1.1").child(i),
            Value::ObjectId(oid("0.0")),
        );
        b.source(
            oid("1.3.6.1.2.1.25.3.3.1.2").child(i),
            Source::Gauge {
                mid: 25.0,
                swing: 20.0,
                integer: true,
            },
        );
    }

    // UCD-SNMP-MIB memory.
    b.int("1.3.6.1.4.1.2021.4.1.0", 0);
    b.text("1.3.6.1.4.1.2021.4.2.0", "swap");
    b.int("1.3.6.1.4.1.2021.4.3.0", 2_097_148);
    b.source(
        oid("1.3.6.1.4.1.2021.4.4.0"),
        Source::Gauge {
            mid: 2_000_000.0,
            swing: 50_000.0,
            integer: true,
        },
    );
    b.int("1.3.6.1.4.1.2021.4.5.0", mem_kb);
    b.source(
        oid("1.3.6.1.4.1.2021.4.6.0"),
        Source::Gauge {
            mid: 6_000_000.0,
            swing: 500_000.0,
            integer: true,
        },
    );
    b.source(
        oid("1.3.6.1.4.1.2021.4.11.0"),
        Source::Gauge {
            mid: 8_000_000.0,
            swing: 500_000.0,
            integer: true,
        },
    );
    b.int("1.3.6.1.4.1.2021.4.12.0", 16_000);
    b.int("1.3.6.1.4.1.2021.4.13.0", 120_000);
    b.int("1.3.6.1.4.1.2021.4.14.0", 300_000);
    b.int("1.3.6.1.4.1.2021.4.15.0", 6_000_000);
    b.int("1.3.6.1.4.1.2021.4.100.0", 0);
    b.text("1.3.6.1.4.1.2021.4.101.0", "");
    // UCD-SNMP-MIB laTable.
    for (i, name, config) in [
        (1u32, "Load-1", "12.00"),
        (2, "Load-5", "12.00"),
        (3, "Load-15", "12.00"),
    ] {
        let la = |c: u32| oid("1.3.6.1.4.1.2021.10.1").join(&[c, i]);
        b.fixed(la(1), Value::Integer(i as i64));
        b.fixed(la(2), Value::OctetString(name.as_bytes().to_vec()));
        b.fixed(la(3), Value::OctetString(b"0.42".to_vec()));
        b.fixed(la(4), Value::OctetString(config.as_bytes().to_vec()));
        b.source(
            la(5),
            Source::Gauge {
                mid: 42.0,
                swing: 30.0,
                integer: true,
            },
        );
        b.fixed(la(100), Value::Integer(0));
        b.fixed(la(101), Value::OctetString(Vec::new()));
    }
    // UCD-SNMP-MIB systemStats: raw CPU counters in ticks (100/s per CPU, 2 CPUs).
    let ss = |c: u32| oid("1.3.6.1.4.1.2021.11").join(&[c, 0]);
    b.fixed(ss(1), Value::Integer(1));
    b.fixed(ss(2), Value::OctetString(b"systemStats".to_vec()));
    for c in 3..=11u32 {
        b.fixed(ss(c), Value::Integer(if c == 11 { 85 } else { 1 }));
    }
    for (c, rate) in [
        (50u32, 20.0),
        (51, 0.5),
        (52, 6.0),
        (53, 170.0),
        (54, 2.0),
        (55, 0.0),
        (56, 0.5),
        (57, 400.0),
        (58, 90.0),
        (59, 900.0),
        (60, 2500.0),
        (61, 1.0),
        (62, 0.0),
        (63, 0.0),
        (64, 0.1),
        (65, 0.0),
        (66, 0.0),
    ] {
        counter(&mut b, ss(c), 0x55_0000 | c as u64, false, rate);
    }
    // UCD-SNMP-MIB dskTable.
    let dsk = |c: u32| oid("1.3.6.1.4.1.2021.9.1").join(&[c, 1]);
    b.fixed(dsk(1), Value::Integer(1));
    b.fixed(dsk(2), Value::OctetString(b"/".to_vec()));
    b.fixed(dsk(3), Value::OctetString(b"/dev/sda2".to_vec()));
    b.fixed(dsk(4), Value::Integer(100_000));
    b.fixed(dsk(5), Value::Integer(-1));
    b.fixed(dsk(6), Value::Integer(100_000_000));
    b.source(
        dsk(7),
        Source::Gauge {
            mid: 60_000_000.0,
            swing: 1_000_000.0,
            integer: true,
        },
    );
    b.source(
        dsk(8),
        Source::Gauge {
            mid: 40_000_000.0,
            swing: 1_000_000.0,
            integer: true,
        },
    );
    b.fixed(dsk(9), Value::Integer(40));
    b.fixed(dsk(10), Value::Integer(5));
    b.fixed(dsk(100), Value::Integer(0));
    b.fixed(dsk(101), Value::OctetString(Vec::new()));
    // UCD-DISKIO-MIB diskIOTable.
    for (i, dev, busy) in [(1u32, "sda", 1.0), (2, "sda1", 0.01), (3, "sda2", 0.99)] {
        let io = |c: u32| oid("1.3.6.1.4.1.2021.13.15.1.1").join(&[c, i]);
        let read = 2_000_000.0 * busy;
        let written = 5_000_000.0 * busy;
        b.fixed(io(1), Value::Integer(i as i64));
        b.fixed(io(2), Value::OctetString(dev.as_bytes().to_vec()));
        let k = |n: u64| 0x77_0000 | ((i as u64) << 8) | n;
        counter(&mut b, io(3), k(1), false, read);
        counter(&mut b, io(4), k(2), false, written);
        counter(&mut b, io(5), k(3), false, read / 8192.0);
        counter(&mut b, io(6), k(4), false, written / 16384.0);
        for c in [9u32, 10, 11] {
            b.source(
                io(c),
                Source::Gauge {
                    mid: 5.0 * busy,
                    swing: 3.0 * busy,
                    integer: true,
                },
            );
        }
        counter(&mut b, io(12), k(1), true, read);
        counter(&mut b, io(13), k(2), true, written);
    }
    b.build("linux")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch48_has_the_tables_a_poller_walks() {
        let img = Profile::Switch48.image(1);
        let count = |prefix: &str| {
            let p = oid(prefix);
            img.entries()
                .iter()
                .filter(|e| e.oid.starts_with(&p))
                .count()
        };
        assert_eq!(count("1.3.6.1.2.1.2.2.1"), 53 * 22);
        assert_eq!(count("1.3.6.1.2.1.31.1.1.1"), 53 * 19);
        assert!(
            img.len() > 2000,
            "a typical switch serves about 2k varbinds"
        );
    }

    #[test]
    fn chassis500_has_500_ports() {
        let img = Profile::Chassis500.image(1);
        let p = oid("1.3.6.1.2.1.2.2.1.1");
        assert_eq!(
            img.entries()
                .iter()
                .filter(|e| e.oid.starts_with(&p))
                .count(),
            500
        );
    }

    #[test]
    fn linux_has_host_resources_and_ucd_tables() {
        let img = Profile::Linux.image(1);
        for prefix in [
            "1.3.6.1.2.1.25.2.3.1",
            "1.3.6.1.2.1.25.3.3.1.2",
            "1.3.6.1.4.1.2021.4.5.0",
            "1.3.6.1.4.1.2021.10.1.5",
            "1.3.6.1.4.1.2021.11.50.0",
            "1.3.6.1.4.1.2021.13.15.1.1.2",
        ] {
            let p = oid(prefix);
            assert!(
                img.entries().iter().any(|e| e.oid.starts_with(&p)),
                "{prefix}"
            );
        }
    }
}
