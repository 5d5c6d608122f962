//! How a simulated agent answers one datagram.
//!
//! Semantics follow RFC 3416 as net-snmp's agent applies them: GET answers
//! noSuchObject/noSuchInstance (v2c, v3) or noSuchName (v1); GETNEXT and
//! GETBULK answer endOfMibView past the end; GETBULK is cut to fit the
//! message size while GET and GETNEXT answer tooBig; v1 has no GETBULK.
//! SNMPv3 is USM as an authoritative engine runs it: discovery reports, user,
//! level, digest and time-window checks, and the matching Report-PDUs.
//!
//! Faults (see [`super::fault`]) are applied here, per device.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::fault::Faults;
use super::image::{DeviceContext, Image};
use crate::snmp::ber::{Writer, tag};
use crate::snmp::pdu::{
    self, ErrorStatus, Message, Pdu, PduHeader, PduType, ScopedData, V3Message, Version, flags,
};
use crate::snmp::usm::{self, Envelope, KeyCache, SecurityLevel, UsmError, UsmUser};
use crate::snmp::{Oid, Value, VarBind};

/// snmpUnknownContexts.0 (SNMP-TARGET... RFC 3413 snmpUnknownContexts).
const UNKNOWN_CONTEXTS: &[u32] = &[1, 3, 6, 1, 6, 3, 12, 1, 5, 0];
const MAX_RESPONSE: usize = 65_507;
/// RFC 3414 3.2.7: the time window is 150 seconds.
const TIME_WINDOW_SECS: i64 = 150;

/// One simulated device.
#[derive(Debug)]
pub struct Device {
    pub name: String,
    pub image: Arc<Image>,
    pub seed: u64,
    pub clock: BootClock,
    pub faults: Faults,
    /// The community (v1/v2c) the device answers.
    pub community: Vec<u8>,
    pub engine_id: Vec<u8>,
}

/// A device's uptime and snmpEngineBoots, which a reboot changes.
#[derive(Debug)]
pub struct BootClock {
    boots: AtomicU32,
    /// Uptime in seconds at simulator time 0, as f64 bits (negative after a
    /// reboot during the run).
    uptime_at_zero: AtomicU64,
}

impl BootClock {
    pub fn new(uptime_at_start: f64) -> BootClock {
        BootClock {
            boots: AtomicU32::new(1),
            uptime_at_zero: AtomicU64::new(uptime_at_start.to_bits()),
        }
    }

    /// Seconds up at simulator time `now`.
    pub fn uptime_secs(&self, now: f64) -> f64 {
        (f64::from_bits(self.uptime_at_zero.load(Ordering::Relaxed)) + now).max(0.0)
    }

    pub fn boots(&self) -> u32 {
        self.boots.load(Ordering::Relaxed)
    }

    /// Restarts the uptime at simulator time `now` and counts a boot.
    pub fn reboot(&self, now: f64) {
        self.uptime_at_zero
            .store((-now).to_bits(), Ordering::Relaxed);
        self.boots.fetch_add(1, Ordering::Relaxed);
    }
}

/// Recordings served on one address, chosen by community or v3 context, as
/// snmpsim does. The address is one SNMP engine.
#[derive(Debug)]
pub struct Catalog {
    pub by_name: HashMap<Vec<u8>, Arc<Device>>,
    pub engine_id: Vec<u8>,
    pub clock: BootClock,
}

/// Who answers on a socket.
#[derive(Debug, Clone)]
pub enum Responder {
    Device(Arc<Device>),
    Catalog(Arc<Catalog>),
    /// A fleet on many loopback addresses of one socket, by destination address.
    ByAddress(Arc<FxHashMap<std::net::IpAddr, Arc<Device>>>),
}

/// Counters of what the simulator did; each USM counter is also what its
/// Report-PDU carries.
#[derive(Debug, Default)]
pub struct SimCounters {
    pub requests: AtomicU64,
    pub responses: AtomicU64,
    pub reports: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_unknown_community: AtomicU64,
    pub dropped_unknown_address: AtomicU64,
    pub dropped_by_fault: AtomicU64,
    pub dropped_unsupported: AtomicU64,
    pub too_big: AtomicU64,
    usm: [AtomicU64; 7],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStats {
    pub requests: u64,
    pub responses: u64,
    pub reports: u64,
    pub dropped_malformed: u64,
    pub dropped_unknown_community: u64,
    pub dropped_unknown_address: u64,
    pub dropped_by_fault: u64,
    pub dropped_unsupported: u64,
    pub too_big: u64,
}

impl SimCounters {
    fn usm_index(e: Option<UsmError>) -> usize {
        match e {
            Some(UsmError::UnsupportedSecLevel) => 0,
            Some(UsmError::NotInTimeWindow) => 1,
            Some(UsmError::UnknownUserName) => 2,
            Some(UsmError::UnknownEngineId) => 3,
            Some(UsmError::WrongDigest) => 4,
            Some(UsmError::DecryptionError) => 5,
            None => 6,
        }
    }

    pub fn snapshot(&self) -> SimStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            requests: g(&self.requests),
            responses: g(&self.responses),
            reports: g(&self.reports),
            dropped_malformed: g(&self.dropped_malformed),
            dropped_unknown_community: g(&self.dropped_unknown_community),
            dropped_unknown_address: g(&self.dropped_unknown_address),
            dropped_by_fault: g(&self.dropped_by_fault),
            dropped_unsupported: g(&self.dropped_unsupported),
            too_big: g(&self.too_big),
        }
    }
}

fn bump(a: &AtomicU64) -> u64 {
    a.fetch_add(1, Ordering::Relaxed) + 1
}

/// A small, fast generator for fault decisions (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An answer to send, after `delay`.
#[derive(Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub delay: Duration,
}

/// What goes in a response's varbind list.
enum Item<'r> {
    Entry(usize),
    Exception(&'r Oid, u8),
    Echo(&'r VarBind),
}

struct Plan<'r> {
    header: PduHeader,
    items: Vec<Item<'r>>,
}

/// Shared state of every simulated agent in the process.
pub struct Agent {
    users: HashMap<Vec<u8>, UsmUser>,
    keys: KeyCache,
    started: Instant,
    max_message_size: usize,
    pub counters: SimCounters,
}

impl Agent {
    pub fn new(users: Vec<UsmUser>, max_message_size: usize) -> Agent {
        Agent {
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            keys: KeyCache::new(),
            started: Instant::now(),
            max_message_size: max_message_size.clamp(484, MAX_RESPONSE),
            counters: SimCounters::default(),
        }
    }

    /// Seconds since the simulator started: the clock devices keep time by.
    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn context<'d>(&self, device: &'d Device) -> DeviceContext<'d> {
        DeviceContext {
            name: &device.name,
            seed: device.seed,
            uptime_secs: device.clock.uptime_secs(self.elapsed_secs()),
            engine_id: &device.engine_id,
            engine_boots: device.clock.boots(),
        }
    }

    /// Applies silence and loss: true when the request is to be dropped.
    fn dropped_by_fault(&self, device: &Device, rng: &mut Rng) -> bool {
        if device.faults.silent || (device.faults.loss > 0.0 && rng.unit() < device.faults.loss) {
            bump(&self.counters.dropped_by_fault);
            return true;
        }
        false
    }

    fn delay(&self, device: &Device, rng: &mut Rng) -> Duration {
        match device.faults.latency {
            None => Duration::ZERO,
            Some((min, max)) => min + (max - min).mul_f64(rng.unit()),
        }
    }

    /// Answers one datagram that arrived for `dst`, or returns `None` to stay
    /// silent (as an agent does for anything it will not answer).
    pub fn handle(
        &self,
        responder: &Responder,
        dst: Option<std::net::IpAddr>,
        datagram: &[u8],
        rng: &mut Rng,
    ) -> Option<Reply> {
        bump(&self.counters.requests);
        let fixed_device;
        let responder = match responder {
            Responder::ByAddress(map) => match dst.and_then(|a| map.get(&a)) {
                Some(d) => {
                    fixed_device = Responder::Device(d.clone());
                    &fixed_device
                }
                None => {
                    bump(&self.counters.dropped_unknown_address);
                    return None;
                }
            },
            other => other,
        };
        let msg = match pdu::decode_message(datagram) {
            Ok(m) => m,
            Err(_) => {
                bump(&self.counters.dropped_malformed);
                return None;
            }
        };
        match msg {
            Message::Community {
                version,
                community,
                pdu,
            } => self.handle_community(responder, version, community, &pdu, rng),
            Message::V3(m) => self.handle_v3(responder, datagram, &m, rng),
        }
    }

    fn handle_community(
        &self,
        responder: &Responder,
        version: Version,
        community: &[u8],
        pdu: &Pdu,
        rng: &mut Rng,
    ) -> Option<Reply> {
        let device = match responder {
            Responder::Device(d) if d.community == community => d.clone(),
            Responder::Catalog(c) => match c.by_name.get(community) {
                Some(d) => d.clone(),
                None => {
                    bump(&self.counters.dropped_unknown_community);
                    return None;
                }
            },
            _ => {
                bump(&self.counters.dropped_unknown_community);
                return None;
            }
        };
        if self.dropped_by_fault(&device, rng) {
            return None;
        }
        let overhead = 48 + community.len();
        let mut plan = self.plan(&device, version, pdu, self.max_message_size - overhead)?;
        if device.faults.wrong_id {
            plan.header.request_id = plan.header.request_id.wrapping_add(1);
        }
        let ctx = self.context(&device);
        let mut w = Writer::with_capacity(1500);
        pdu::encode_community_message(&mut w, version, community, &plan.header, |w| {
            write_items(w, &plan.items, &device, &ctx)
        });
        let mut bytes = w.into_vec();
        self.finish(&device, &mut bytes);
        bump(&self.counters.responses);
        Some(Reply {
            bytes,
            delay: self.delay(&device, rng),
        })
    }

    /// Truncation and malformation happen to the finished message.
    fn finish(&self, device: &Device, bytes: &mut Vec<u8>) {
        if device.faults.truncate {
            let keep = (bytes.len() / 2).max(1);
            bytes.truncate(keep);
        }
    }

    /// Decides the response PDU for a request, or `None` to drop it.
    fn plan<'r>(
        &self,
        device: &'r Device,
        version: Version,
        pdu: &'r Pdu,
        budget: usize,
    ) -> Option<Plan<'r>> {
        let img = &device.image;
        let mut header = PduHeader {
            pdu_type: PduType::Response,
            request_id: pdu.header.request_id,
            error_status: 0,
            error_index: 0,
        };
        let v1 = version == Version::V1;
        let error_plan = |status: ErrorStatus, index: usize| Plan {
            header: PduHeader {
                error_status: status.wire(),
                error_index: index as i32,
                ..header
            },
            items: pdu.varbinds.iter().map(Item::Echo).collect(),
        };
        let next = |oid: &Oid| -> Option<usize> {
            // The non-increasing fault: an agent stuck on the OID it was asked about.
            if device.faults.non_increasing
                && let Some(i) = img.find(oid.arcs())
            {
                return Some(i);
            }
            img.next_after(oid.arcs())
        };
        let mut items = Vec::with_capacity(pdu.varbinds.len());
        let mut size = 0usize;
        match pdu.header.pdu_type {
            PduType::GetRequest => {
                for (i, vb) in pdu.varbinds.iter().enumerate() {
                    match img.find(vb.oid.arcs()) {
                        Some(idx) => {
                            size += img.entries()[idx].size_hint();
                            items.push(Item::Entry(idx));
                        }
                        None if v1 => return Some(error_plan(ErrorStatus::NoSuchName, i + 1)),
                        None => {
                            size += vb.oid.len() * 5 + 8;
                            items.push(Item::Exception(&vb.oid, missing_tag(img, &vb.oid)));
                        }
                    }
                }
            }
            PduType::GetNextRequest => {
                for (i, vb) in pdu.varbinds.iter().enumerate() {
                    match next(&vb.oid) {
                        Some(idx) => {
                            size += img.entries()[idx].size_hint();
                            items.push(Item::Entry(idx));
                        }
                        None if v1 => return Some(error_plan(ErrorStatus::NoSuchName, i + 1)),
                        None => {
                            size += vb.oid.len() * 5 + 8;
                            items.push(Item::Exception(&vb.oid, tag::END_OF_MIB_VIEW));
                        }
                    }
                }
            }
            PduType::GetBulkRequest if !v1 => {
                let n = pdu.varbinds.len();
                let non_repeaters = (pdu.header.error_status.max(0) as usize).min(n);
                let max_repetitions = pdu.header.error_index.max(0) as usize;
                for vb in &pdu.varbinds[..non_repeaters] {
                    match next(&vb.oid) {
                        Some(idx) => {
                            size += img.entries()[idx].size_hint();
                            items.push(Item::Entry(idx));
                        }
                        None => items.push(Item::Exception(&vb.oid, tag::END_OF_MIB_VIEW)),
                    }
                }
                let mut cursors: Vec<(Option<usize>, &Oid)> = pdu.varbinds[non_repeaters..]
                    .iter()
                    .map(|vb| (None, &vb.oid))
                    .collect();
                'reps: for _ in 0..max_repetitions {
                    let mut all_done = true;
                    for (cursor, start) in cursors.iter_mut() {
                        let from = match cursor {
                            Some(i) => img.entries()[*i].oid.arcs(),
                            None => start.arcs(),
                        };
                        let from_oid;
                        let found = if device.faults.non_increasing {
                            from_oid = Oid::from_slice(from);
                            next(&from_oid)
                        } else {
                            img.next_after(from)
                        };
                        let (item, item_size) = match found {
                            Some(idx) => {
                                all_done = false;
                                *cursor = Some(idx);
                                (Item::Entry(idx), img.entries()[idx].size_hint())
                            }
                            None => {
                                let oid = match cursor {
                                    Some(i) => &img.entries()[*i].oid,
                                    None => *start,
                                };
                                (
                                    Item::Exception(oid, tag::END_OF_MIB_VIEW),
                                    oid.len() * 5 + 8,
                                )
                            }
                        };
                        if size + item_size > budget {
                            break 'reps;
                        }
                        size += item_size;
                        items.push(item);
                    }
                    if all_done {
                        break;
                    }
                }
            }
            PduType::SetRequest => {
                let status = if v1 {
                    ErrorStatus::NoSuchName
                } else {
                    ErrorStatus::NotWritable
                };
                return Some(error_plan(status, 1));
            }
            _ => {
                bump(&self.counters.dropped_unsupported);
                return None;
            }
        }
        let too_big_limit = device.faults.too_big.map_or(budget, |t| t.min(budget));
        if size > too_big_limit {
            bump(&self.counters.too_big);
            header.error_status = ErrorStatus::TooBig.wire();
            header.error_index = 0;
            // v1 echoes the request; v2 sends an empty list (RFC 3416 4.2.1).
            let items = if v1 {
                pdu.varbinds.iter().map(Item::Echo).collect()
            } else {
                Vec::new()
            };
            return Some(Plan { header, items });
        }
        Some(Plan { header, items })
    }

    fn handle_v3(
        &self,
        responder: &Responder,
        datagram: &[u8],
        m: &V3Message<'_>,
        rng: &mut Rng,
    ) -> Option<Reply> {
        // The engine answering: the device itself, or the catalog's address.
        let (engine_id, clock, fixed) = match responder {
            Responder::Device(d) => (&d.engine_id[..], &d.clock, Some(d)),
            Responder::Catalog(c) => (&c.engine_id[..], &c.clock, None),
            Responder::ByAddress(_) => return None,
        };
        if let Some(d) = fixed
            && self.dropped_by_fault(d, rng)
        {
            return None;
        }
        let boots = clock.boots();
        let time = clock.uptime_secs(self.elapsed_secs()).min(i32::MAX as f64) as u32;
        let reportable = m.flags & flags::REPORTABLE != 0;
        let plain_request_id = || match m.data {
            ScopedData::Plain(b) => pdu::decode_scoped_pdu(b)
                .map(|s| s.pdu.header.request_id)
                .unwrap_or(0),
            ScopedData::Encrypted(_) => 0,
        };
        let report = |error: UsmError, keys: Option<&crate::snmp::usm::LocalizedKeys>| {
            if !reportable {
                return None;
            }
            self.report(
                engine_id,
                boots,
                time,
                m,
                error.stats_oid(),
                Some(error),
                plain_request_id(),
                keys,
            )
        };
        if m.usm.engine_id != engine_id {
            return report(UsmError::UnknownEngineId, None);
        }
        let Some(user) = self.users.get(m.usm.user_name) else {
            return report(UsmError::UnknownUserName, None);
        };
        let auth = m.flags & flags::AUTH != 0;
        let private = m.flags & flags::PRIV != 0;
        if private && !auth {
            bump(&self.counters.dropped_malformed);
            return None;
        }
        let level = match (auth, private) {
            (false, _) => SecurityLevel::NoAuthNoPriv,
            (true, false) => SecurityLevel::AuthNoPriv,
            (true, true) => SecurityLevel::AuthPriv,
        };
        if level != user.level {
            return report(UsmError::UnsupportedSecLevel, None);
        }
        let keys = auth.then(|| self.keys.localized(user, engine_id));
        if let Some(k) = &keys {
            if !k.verify(datagram, m.auth_params_offset, m.usm.auth_params) {
                return report(UsmError::WrongDigest, None);
            }
            if m.usm.engine_boots != boots
                || (m.usm.engine_time as i64 - time as i64).abs() > TIME_WINDOW_SECS
            {
                return report(UsmError::NotInTimeWindow, Some(k));
            }
        }
        // The payload must be what the flags say it is.
        if private != matches!(m.data, ScopedData::Encrypted(_)) {
            bump(&self.counters.dropped_malformed);
            return None;
        }
        let Ok(plain) = usm::open_scoped(m, keys.as_deref()) else {
            return report(UsmError::DecryptionError, None);
        };
        let Ok(scoped) = pdu::decode_scoped_pdu(&plain) else {
            // A wrong privacy passphrase decrypts to garbage: RFC 3414 counts
            // that as a decryption error.
            return report(UsmError::DecryptionError, None);
        };
        let device = match (fixed, responder) {
            (Some(d), _) => d.clone(),
            (None, Responder::Catalog(c)) => match c.by_name.get(scoped.context_name) {
                Some(d) => {
                    if self.dropped_by_fault(d, rng) {
                        return None;
                    }
                    d.clone()
                }
                None => {
                    return if reportable {
                        self.report(
                            engine_id,
                            boots,
                            time,
                            m,
                            UNKNOWN_CONTEXTS,
                            None,
                            scoped.pdu.header.request_id,
                            keys.as_deref(),
                        )
                    } else {
                        None
                    };
                }
            },
            _ => return None,
        };
        let overhead = 160 + engine_id.len() + user.name.len() + scoped.context_name.len();
        let budget = (m.max_size.max(484) as usize).min(self.max_message_size) - overhead;
        let mut plan = self.plan(&device, Version::V3, &scoped.pdu, budget)?;
        let ctx = self.context(&device);
        let mut sw = Writer::with_capacity(1500);
        pdu::encode_scoped_pdu(&mut sw, engine_id, scoped.context_name, &plan.header, |w| {
            write_items(w, &plan.items, &device, &ctx)
        });
        let msg_id = if device.faults.wrong_id {
            plan.header.request_id = plan.header.request_id.wrapping_add(1);
            m.msg_id.wrapping_add(1)
        } else {
            m.msg_id
        };
        let mut bytes = self.encode_v3(
            engine_id,
            boots,
            time,
            m.usm.user_name,
            msg_id,
            sw.as_slice(),
            keys.as_deref(),
            private,
        );
        self.finish(&device, &mut bytes);
        bump(&self.counters.responses);
        Some(Reply {
            bytes,
            delay: self.delay(&device, rng),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn encode_v3(
        &self,
        engine_id: &[u8],
        boots: u32,
        time: u32,
        user_name: &[u8],
        msg_id: i32,
        scoped: &[u8],
        keys: Option<&crate::snmp::usm::LocalizedKeys>,
        private: bool,
    ) -> Vec<u8> {
        usm::seal_message(
            scoped,
            &Envelope {
                msg_id,
                max_size: MAX_RESPONSE as i32,
                reportable: false,
                engine_id,
                engine_boots: boots,
                engine_time: time,
                user_name,
                keys,
                encrypt: private,
                salt: self.keys.next_salt(),
            },
        )
    }

    /// A Report-PDU carrying the counter of `error` (or of `oid`).
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        engine_id: &[u8],
        boots: u32,
        time: u32,
        m: &V3Message<'_>,
        oid: &[u32],
        error: Option<UsmError>,
        request_id: i32,
        keys: Option<&crate::snmp::usm::LocalizedKeys>,
    ) -> Option<Reply> {
        let count = bump(&self.counters.usm[SimCounters::usm_index(error)]);
        bump(&self.counters.reports);
        let header = PduHeader::request(PduType::Report, request_id);
        let vb = VarBind::new(Oid::from_slice(oid), Value::Counter32(count as u32));
        let mut sw = Writer::with_capacity(128);
        pdu::encode_scoped_pdu(&mut sw, engine_id, &[], &header, |w| vb.encode(w));
        let bytes = self.encode_v3(
            engine_id,
            boots,
            time,
            m.usm.user_name,
            m.msg_id,
            sw.as_slice(),
            keys,
            false,
        );
        Some(Reply {
            bytes,
            delay: Duration::ZERO,
        })
    }
}

/// noSuchInstance when the object exists but not this instance, else
/// noSuchObject. Without MIBs the object is taken to exist when an instance
/// of the same length sits under the same parent (another row of a column
/// indexed by one arc, or the `.0` of a scalar).
fn missing_tag(img: &Image, oid: &Oid) -> u8 {
    let arcs = oid.arcs();
    if arcs.len() > 1 {
        let parent = &arcs[..arcs.len() - 1];
        let mut i = img.next_after(parent);
        // Bounded, so a GET of many missing OIDs costs little.
        let mut budget = 64;
        while let Some(idx) = i {
            budget -= 1;
            if budget == 0 {
                break;
            }
            let e = img.entries()[idx].oid.arcs();
            if !e.starts_with(parent) {
                break;
            }
            if e.len() == arcs.len() {
                return tag::NO_SUCH_INSTANCE;
            }
            i = img.next_after(e);
        }
    }
    tag::NO_SUCH_OBJECT
}

fn write_items(w: &mut Writer, items: &[Item<'_>], device: &Device, ctx: &DeviceContext<'_>) {
    if device.faults.malformed {
        // A varbind whose name has an unterminated sub-identifier and no value:
        // the header still routes, the body cannot be decoded.
        w.put_bytes(&[0x30, 0x04, 0x06, 0x02, 0x2b, 0x86]);
        return;
    }
    for item in items.iter().rev() {
        match item {
            Item::Entry(i) => device.image.write_varbind(*i, ctx, w),
            Item::Exception(oid, t) => {
                let mark = w.mark();
                w.put_empty(*t);
                w.put_oid(oid.arcs());
                w.wrap(mark, tag::SEQUENCE);
            }
            Item::Echo(vb) => vb.encode(w),
        }
    }
}
