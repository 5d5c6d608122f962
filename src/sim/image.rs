//! What a simulated agent serves: a table of OIDs sorted as an agent walks
//! them, each with a value that is either fixed or computed when asked.
//!
//! An image is shared (behind an `Arc`) by every device of a fleet built from
//! the same profile; what differs per device (its name, MAC addresses, counter
//! rates, uptime) comes from the [`Device`] at request time, derived from the
//! device's seed, so ten thousand devices cost one image.
//!
//! Fixed values are encoded once, whole varbind included, so answering is
//! mostly copying bytes.

use std::sync::Arc;

use crate::snmp::ber::{Writer, tag};
use crate::snmp::{Oid, Value, VarBind};

/// Period of the daily-like swing of traffic rates, in seconds.
const RATE_PERIOD_SECS: f64 = 3600.0;

/// How a value is produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Fixed(Value),
    /// A counter that grows at `rate` per second (scaled per device between
    /// 0.5 and 1.5 times, swinging by `swing` of itself over the period),
    /// from `base` plus a per-device offset. Counter32 wraps at 2^32.
    ///
    /// `key` names the underlying count: the 32-bit and 64-bit views of one
    /// interface counter (ifInOctets, ifHCInOctets) share it, so the first is
    /// always the second modulo 2^32.
    Counter {
        key: u64,
        wide: bool,
        base: u64,
        rate: f64,
        swing: f64,
    },
    /// Time since the device booted: TimeTicks (hundredths) for sysUpTime and
    /// hrSystemUptime, Integer seconds for snmpEngineTime.
    Uptime {
        ticks: bool,
    },
    /// A gauge around `mid` moving by up to `swing` either way.
    Gauge {
        mid: f64,
        swing: f64,
        integer: bool,
    },
    /// The device's name (sysName).
    DeviceName,
    /// A MAC address unique to the device and interface.
    MacAddress {
        index: u32,
    },
    /// The device's SNMP engine ID (snmpEngineID).
    EngineId,
    /// How often the device has booted (snmpEngineBoots).
    EngineBoots,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub oid: Oid,
    /// The OBJECT IDENTIFIER element, tag and length included.
    pub oid_element: Box<[u8]>,
    pub source: Source,
    /// The whole varbind, for fixed values.
    pub fixed_varbind: Option<Box<[u8]>>,
}

impl Entry {
    fn new(oid: Oid, source: Source) -> Entry {
        let mut w = Writer::with_capacity(32);
        w.put_oid(oid.arcs());
        let oid_element: Box<[u8]> = w.as_slice().into();
        let fixed_varbind = match &source {
            Source::Fixed(v) => {
                let mut w = Writer::with_capacity(oid_element.len() + 32);
                VarBind::new(oid.clone(), v.clone()).encode(&mut w);
                Some(w.as_slice().into())
            }
            _ => None,
        };
        Entry {
            oid,
            oid_element,
            source,
            fixed_varbind,
        }
    }

    /// Encoded size of the varbind, exact for fixed values and an upper
    /// bound for computed ones.
    pub fn size_hint(&self) -> usize {
        match &self.fixed_varbind {
            Some(b) => b.len(),
            None => self.oid_element.len() + 40,
        }
    }
}

/// A sorted OID table.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub name: String,
    entries: Vec<Entry>,
}

/// Per-device inputs to computed values.
#[derive(Debug, Clone)]
pub struct DeviceContext<'a> {
    pub name: &'a str,
    pub seed: u64,
    /// Seconds since the device booted.
    pub uptime_secs: f64,
    pub engine_id: &'a [u8],
    pub engine_boots: u32,
}

/// SplitMix64: a cheap, well-mixed hash of a seed and a salt.
pub fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a name: a stable number for a device or recording name.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// A number in [0, 1) from a seed and a salt.
pub fn unit(seed: u64, salt: u64) -> f64 {
    (mix(seed, salt) >> 11) as f64 / (1u64 << 53) as f64
}

impl Image {
    /// Builds an image from entries in any order; a repeated OID keeps the last.
    pub fn new(name: impl Into<String>, mut items: Vec<(Oid, Source)>) -> Image {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
        for (oid, source) in items {
            if entries.last().is_some_and(|e| e.oid == oid) {
                entries.pop();
            }
            entries.push(Entry::new(oid, source));
        }
        Image {
            name: name.into(),
            entries,
        }
    }

    /// An image that serves a recording as recorded. With `dynamic`, counters
    /// advance from their recorded values and the uptimes tick.
    pub fn from_recording(name: impl Into<String>, varbinds: Vec<VarBind>, dynamic: bool) -> Image {
        let items = varbinds
            .into_iter()
            .map(|vb| {
                let source = if dynamic {
                    animate(&vb)
                } else {
                    Source::Fixed(vb.value)
                };
                (vb.oid, source)
            })
            .collect();
        Image::new(name, items)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Index of the entry for exactly `oid`.
    pub fn find(&self, oid: &[u32]) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.oid.arcs().cmp(oid))
            .ok()
    }

    /// Index of the first entry after `oid`.
    pub fn next_after(&self, oid: &[u32]) -> Option<usize> {
        let i = self.entries.partition_point(|e| e.oid.arcs() <= oid);
        (i < self.entries.len()).then_some(i)
    }

    /// The value of entry `index` for a device.
    pub fn value(&self, index: usize, ctx: &DeviceContext<'_>) -> Value {
        compute(&self.entries[index].source, index as u64, ctx)
    }

    /// Every varbind of the image as a device would serve it now.
    pub fn snapshot(&self, ctx: &DeviceContext<'_>) -> Vec<VarBind> {
        (0..self.entries.len())
            .map(|i| VarBind::new(self.entries[i].oid.clone(), self.value(i, ctx)))
            .collect()
    }

    /// Writes entry `index` as a varbind (backwards, see [`Writer`]).
    pub fn write_varbind(&self, index: usize, ctx: &DeviceContext<'_>, w: &mut Writer) {
        let entry = &self.entries[index];
        if let Some(bytes) = &entry.fixed_varbind {
            w.put_bytes(bytes);
            return;
        }
        let mark = w.mark();
        compute(&entry.source, index as u64, ctx).encode(w);
        w.put_bytes(&entry.oid_element);
        w.wrap(mark, tag::SEQUENCE);
    }
}

/// What a recorded value becomes when a recording is animated.
fn animate(vb: &VarBind) -> Source {
    const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
    const HR_SYSTEM_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 1, 1, 0];
    const ENGINE_TIME: &[u32] = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 3, 0];
    let arcs = vb.oid.arcs();
    if arcs == SYS_UPTIME || arcs == HR_SYSTEM_UPTIME {
        return Source::Uptime { ticks: true };
    }
    if arcs == ENGINE_TIME {
        return Source::Uptime { ticks: false };
    }
    match vb.value {
        Value::Counter32(v) => Source::Counter {
            key: oid_key(arcs),
            wide: false,
            base: v as u64,
            rate: 1000.0,
            swing: 0.3,
        },
        Value::Counter64(v) => Source::Counter {
            key: oid_key(arcs),
            wide: true,
            base: v,
            rate: 1000.0,
            swing: 0.3,
        },
        _ => Source::Fixed(vb.value.clone()),
    }
}

/// A stable number for an OID, to key the counters of an animated recording.
fn oid_key(arcs: &[u32]) -> u64 {
    arcs.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &a| mix(h, a as u64))
}

/// The value of a counter `secs` after boot: the integral of a rate that
/// swings sinusoidally, so it never decreases.
pub fn counter_value(base: u64, rate: f64, swing: f64, phase: f64, secs: f64) -> u64 {
    let w = std::f64::consts::TAU / RATE_PERIOD_SECS;
    let swing = swing.clamp(0.0, 1.0);
    let integral = rate * secs + rate * swing * ((phase).cos() - (w * secs + phase).cos()) / w;
    base.wrapping_add(integral.max(0.0) as u64)
}

fn compute(source: &Source, salt: u64, ctx: &DeviceContext<'_>) -> Value {
    match source {
        Source::Fixed(v) => v.clone(),
        Source::Counter {
            key,
            wide,
            base,
            rate,
            swing,
        } => {
            let factor = 0.5 + unit(ctx.seed, *key);
            let phase = unit(ctx.seed, key ^ 0xa5a5) * std::f64::consts::TAU;
            // Devices of one fleet start their counters at different places,
            // so wraps do not all happen at once.
            let offset = if *rate > 0.0 {
                mix(ctx.seed, key ^ 0x5a5a) >> 24
            } else {
                0
            };
            let v = counter_value(
                base.wrapping_add(offset),
                rate * factor,
                *swing,
                phase,
                ctx.uptime_secs,
            );
            if *wide {
                Value::Counter64(v)
            } else {
                Value::Counter32(v as u32)
            }
        }
        Source::Uptime { ticks: true } => Value::TimeTicks((ctx.uptime_secs * 100.0) as u64 as u32),
        Source::Uptime { ticks: false } => {
            Value::Integer((ctx.uptime_secs as i64).min(i32::MAX as i64))
        }
        Source::Gauge {
            mid,
            swing,
            integer,
        } => {
            let phase = unit(ctx.seed, salt) * std::f64::consts::TAU;
            let w = std::f64::consts::TAU / RATE_PERIOD_SECS;
            let v = (mid + swing * (w * ctx.uptime_secs + phase).sin()).max(0.0);
            if *integer {
                Value::Integer(v.round() as i64)
            } else {
                Value::Gauge32(v.round() as u32)
            }
        }
        Source::DeviceName => Value::OctetString(ctx.name.as_bytes().to_vec()),
        Source::MacAddress { index } => {
            let h = mix(ctx.seed, *index as u64 ^ 0x3c3c);
            let b = h.to_be_bytes();
            // Locally administered, unicast.
            Value::OctetString(vec![0x02, b[3], b[4], b[5], b[6], b[7]])
        }
        Source::EngineId => Value::OctetString(ctx.engine_id.to_vec()),
        Source::EngineBoots => Value::Integer(ctx.engine_boots as i64),
    }
}

/// An image shared by many devices.
pub type SharedImage = Arc<Image>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::oid;

    fn ctx(secs: f64) -> DeviceContext<'static> {
        DeviceContext {
            name: "dev",
            seed: 7,
            uptime_secs: secs,
            engine_id: b"e",
            engine_boots: 1,
        }
    }

    #[test]
    fn finds_exact_and_next_entries() {
        let img = Image::new(
            "t",
            vec![
                (oid("1.3.6.1.2.1.1.3.0"), Source::Uptime { ticks: true }),
                (
                    oid("1.3.6.1.2.1.1.1.0"),
                    Source::Fixed(Value::OctetString(b"x".to_vec())),
                ),
            ],
        );
        assert_eq!(img.find(oid("1.3.6.1.2.1.1.1.0").arcs()), Some(0));
        assert_eq!(img.find(oid("1.3.6.1.2.1.1.2.0").arcs()), None);
        assert_eq!(img.next_after(oid("1.3.6.1.2.1.1").arcs()), Some(0));
        assert_eq!(img.next_after(oid("1.3.6.1.2.1.1.1.0").arcs()), Some(1));
        assert_eq!(img.next_after(oid("1.3.6.1.2.1.1.3.0").arcs()), None);
    }

    #[test]
    fn counters_only_grow_and_counter32_is_the_low_half_that_wraps() {
        let counter = |wide| Source::Counter {
            key: 42,
            wide,
            base: u32::MAX as u64 - 1000,
            rate: 1e6,
            swing: 0.5,
        };
        let narrow = Image::new("t", vec![(oid("1.3.6.1.2.1.2.2.1.10.1"), counter(false))]);
        let wide = Image::new("t", vec![(oid("1.3.6.1.2.1.31.1.1.1.6.1"), counter(true))]);
        let (mut last64, mut last32, mut wraps) = (0u64, 0u64, 0);
        for s in 0..5000 {
            let v64 = wide.value(0, &ctx(s as f64)).as_u64().unwrap();
            let v32 = narrow.value(0, &ctx(s as f64)).as_u64().unwrap();
            assert!(v64 >= last64, "counter went back at {s} s");
            assert_eq!(
                v32,
                v64 & 0xffff_ffff,
                "Counter32 is the 64-bit count modulo 2^32"
            );
            if v32 < last32 {
                wraps += 1;
            }
            (last64, last32) = (v64, v32);
        }
        assert!(wraps >= 1, "a 1 MB/s Counter32 wraps within 5000 s");
    }

    #[test]
    fn computed_and_fixed_varbinds_encode_the_same_way() {
        let img = Image::new(
            "t",
            vec![
                (oid("1.3.6.1.2.1.1.5.0"), Source::DeviceName),
                (
                    oid("1.3.6.1.2.1.1.6.0"),
                    Source::Fixed(Value::OctetString(b"dev".to_vec())),
                ),
            ],
        );
        let c = ctx(1.0);
        let mut a = Writer::with_capacity(64);
        img.write_varbind(0, &c, &mut a);
        let mut b = Writer::with_capacity(64);
        VarBind::new(
            oid("1.3.6.1.2.1.1.5.0"),
            Value::OctetString(b"dev".to_vec()),
        )
        .encode(&mut b);
        assert_eq!(a.as_slice(), b.as_slice());
    }
}
