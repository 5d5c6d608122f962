//! The SNMP client: [`SnmpClient`] owns the shared transport and the v3 key
//! cache; a [`Session`] is one agent with its credentials, limits and (for v3)
//! the engine it discovered.
//!
//! Operations: GET of many OIDs (split into PDUs of `max_oids_per_pdu`, sent
//! concurrently within the agent's in-flight limit), GETNEXT, GETBULK and walk
//! (GETBULK whose max-repetitions follows the agent, GETNEXT for v1).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::ber::Writer;
use super::dedicated::DedicatedSocket;
use super::error::{Error, Rejection};
use super::oid::Oid;
use super::pdu::{self, ErrorStatus, Message, Pdu, PduHeader, PduType, ScopedData, Version, flags};
use super::target::{Credentials, Protocol, Target};
use super::tcp::TcpChannel;
use super::transport::{ExchangeError, Registration, Transport, TransportOptions, TransportStats};
use super::usm::{self, Envelope, KeyCache, LocalizedKeys, SecurityLevel, UsmError, UsmUser};
use super::value::{Value, VarBind};

/// msgMaxSize we announce in v3: the largest UDP payload we can take.
const V3_MAX_MESSAGE_SIZE: i32 = 65_507;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub transport: TransportOptions,
    /// Requests one agent may have outstanding at once. Agents answer worse,
    /// not faster, with more than one or two.
    pub max_in_flight_per_agent: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transport: TransportOptions::default(),
            max_in_flight_per_agent: 2,
        }
    }
}

/// Per-agent settings; the defaults are LibreNMS's (`snmp.timeout` 1 s,
/// `snmp.retries` 5, `snmp.max_oid` 10) and net-snmp's GETBULK default of 10.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub timeout: Duration,
    pub retries: u32,
    pub max_oids_per_pdu: usize,
    pub max_repetitions: u32,
    /// Stop a walk when the agent returns an OID not after the previous one
    /// (net-snmp's check; `-Cc` turns it off).
    pub check_increasing: bool,
    /// Stop a walk after this many varbinds, against agents that never end one.
    pub max_walk_varbinds: usize,
    /// GET the root itself when a walk finds nothing below it (net-snmp
    /// snmpwalk does this unless `-CI`).
    pub walk_root_fallback: bool,
    /// Walk with GETBULK (v2c, v3); false walks with GETNEXT, as LibreNMS
    /// does for an OS with `snmp_bulk: false`.
    pub bulk: bool,
    /// Walks of these subtrees use GETNEXT (LibreNMS's `oids.no_bulk`).
    pub no_bulk: Vec<Oid>,
    /// Walks of these subtrees do not stop on an OID out of order
    /// (LibreNMS's `oids.unordered`, net-snmp's `-Cc`).
    pub unordered: Vec<Oid>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            timeout: Duration::from_secs(1),
            retries: 5,
            max_oids_per_pdu: 10,
            max_repetitions: 10,
            check_increasing: true,
            max_walk_varbinds: 2_000_000,
            walk_root_fallback: true,
            bulk: true,
            no_bulk: Vec::new(),
            unordered: Vec::new(),
        }
    }
}

/// A cheap-to-clone handle on the process's SNMP client.
#[derive(Clone)]
pub struct SnmpClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    transport: Transport,
    keys: KeyCache,
    limits: Mutex<HashMap<SocketAddr, Weak<Semaphore>>>,
    max_in_flight: usize,
}

impl std::fmt::Debug for SnmpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpClient")
            .field("transport", &self.inner.transport)
            .finish()
    }
}

impl SnmpClient {
    /// Opens the shared sockets; must run inside a tokio runtime.
    pub fn new(options: ClientOptions) -> std::io::Result<SnmpClient> {
        Ok(SnmpClient {
            inner: Arc::new(ClientInner {
                transport: Transport::bind(&options.transport)?,
                keys: KeyCache::new(),
                limits: Mutex::new(HashMap::new()),
                max_in_flight: options.max_in_flight_per_agent.max(1),
            }),
        })
    }

    /// Resolves `target` and opens a session on it: over the shared UDP
    /// sockets, or, for a `tcp:` target, over a connection of its own
    /// that the session opens on its first request and keeps.
    pub async fn session(
        &self,
        target: &Target,
        credentials: Credentials,
        options: SessionOptions,
    ) -> Result<Session, Error> {
        let addr = target.resolve().await?;
        Ok(self.session_to(addr, target, credentials, options))
    }

    /// A session on `target`, whose host is already resolved to `addr`.
    pub fn session_to(
        &self,
        addr: SocketAddr,
        target: &Target,
        credentials: Credentials,
        options: SessionOptions,
    ) -> Session {
        let link = match target.protocol {
            Protocol::Udp => Link::Shared,
            Protocol::Tcp => Link::Tcp(Arc::new(TcpChannel::new(addr))),
        };
        self.new_session(addr, target.to_string(), credentials, options, link)
    }

    /// Resolves `target` and opens a session on it that, over UDP, has a
    /// socket of its own and waits for each reply in a blocking call,
    /// without the shared transport's table, receive task and timers
    /// (`dedicated`). Cheapest when one agent is all a process talks to
    /// (`ironpoll get` and `walk` of one agent). Each request blocks the
    /// runtime's thread until its reply or timeout: nothing else may run
    /// on that runtime, so the engine never opens one.
    pub async fn dedicated_session(
        &self,
        target: &Target,
        credentials: Credentials,
        options: SessionOptions,
    ) -> Result<Session, Error> {
        let addr = target.resolve().await?;
        if target.protocol == Protocol::Tcp {
            // A TCP connection is the session's own already.
            return Ok(self.session_to(addr, target, credentials, options));
        }
        let socket = DedicatedSocket::connect(addr).map_err(|e| Error::Send {
            agent: target.to_string(),
            reason: e.to_string(),
        })?;
        let link = Link::Dedicated(Arc::new(socket));
        Ok(self.new_session(addr, target.to_string(), credentials, options, link))
    }

    /// A UDP session on an address already resolved; `agent` names it in
    /// errors.
    pub fn session_at(
        &self,
        addr: SocketAddr,
        agent: String,
        credentials: Credentials,
        options: SessionOptions,
    ) -> Session {
        self.new_session(addr, agent, credentials, options, Link::Shared)
    }

    fn new_session(
        &self,
        addr: SocketAddr,
        agent: String,
        credentials: Credentials,
        options: SessionOptions,
        link: Link,
    ) -> Session {
        let in_flight = self.inner.limit_for(addr);
        let sizer = BulkSizer::new(options.max_repetitions);
        Session {
            inner: Arc::new(SessionInner {
                client: self.inner.clone(),
                addr,
                agent,
                credentials,
                options,
                in_flight,
                sizer: Mutex::new(sizer),
                engine: Mutex::new(None),
                discovery: tokio::sync::Mutex::new(()),
                link,
            }),
        }
    }

    pub fn stats(&self) -> TransportStats {
        self.inner.transport.stats()
    }

    /// Requests waiting for a reply right now, across all agents.
    pub fn pending_requests(&self) -> usize {
        self.inner.transport.pending()
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.transport.local_addrs()
    }
}

impl ClientInner {
    /// The in-flight limit of an agent, shared by every session on it.
    fn limit_for(&self, addr: SocketAddr) -> Arc<Semaphore> {
        let mut limits = self.limits.lock();
        if let Some(s) = limits.get(&addr).and_then(Weak::upgrade) {
            return s;
        }
        if limits.len() >= 1024 && limits.len().is_power_of_two() {
            limits.retain(|_, w| w.strong_count() > 0);
        }
        let s = Arc::new(Semaphore::new(self.max_in_flight));
        limits.insert(addr, Arc::downgrade(&s));
        s
    }
}

/// Chooses max-repetitions for GETBULK: halves on tooBig (and remembers the
/// size that was too big), follows the agent down when it returns fewer
/// repetitions than asked because its response was full, and grows back
/// slowly while full answers keep coming.
#[derive(Debug, Clone)]
pub(crate) struct BulkSizer {
    configured: u32,
    current: u32,
    /// Smallest max-repetitions that drew tooBig.
    too_big_at: Option<u32>,
}

impl BulkSizer {
    pub(crate) fn new(configured: u32) -> BulkSizer {
        let configured = configured.max(1);
        BulkSizer {
            configured,
            current: configured,
            too_big_at: None,
        }
    }

    pub(crate) fn current(&self) -> u32 {
        self.current
    }

    /// After tooBig for `asked`: false when there is nothing smaller to try.
    pub(crate) fn on_too_big(&mut self, asked: u32) -> bool {
        if asked <= 1 {
            return false;
        }
        self.too_big_at = Some(self.too_big_at.map_or(asked, |t| t.min(asked)));
        self.current = (asked / 2).max(1);
        true
    }

    /// After a response with `got` repetitions to a request for `asked`;
    /// `left_subtree` is true when the walk ended inside this response.
    pub(crate) fn on_response(&mut self, asked: u32, got: u32, left_subtree: bool) {
        if left_subtree {
            return;
        }
        if got < asked {
            self.current = got.max(1);
        } else if self.current < self.configured {
            let ceiling = self
                .too_big_at
                .map_or(self.configured, |t| t.saturating_sub(1).max(1));
            self.current = (self.current + (self.current / 4).max(1)).min(ceiling);
        }
    }
}

/// One agent: address, credentials and per-agent state. Clones share state.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    client: Arc<ClientInner>,
    addr: SocketAddr,
    agent: String,
    credentials: Credentials,
    options: SessionOptions,
    in_flight: Arc<Semaphore>,
    sizer: Mutex<BulkSizer>,
    engine: Mutex<Option<Engine>>,
    discovery: tokio::sync::Mutex<()>,
    link: Link,
}

/// The session's way to its agent.
#[derive(Clone)]
enum Link {
    /// The client's shared UDP sockets.
    Shared,
    /// The agent's TCP connection.
    Tcp(Arc<TcpChannel>),
    /// A UDP socket of the session's own, with blocking calls.
    Dedicated(Arc<DedicatedSocket>),
}

/// A request-id reserved for one request: in the shared transport's table,
/// or from the session's own connection or socket, which no other session
/// reads.
enum Ticket {
    Shared(Registration),
    Own(i32),
}

impl Ticket {
    fn id(&self) -> i32 {
        match self {
            Ticket::Shared(reg) => reg.id(),
            Ticket::Own(id) => *id,
        }
    }
}

/// What a v3 session knows about the agent's engine (RFC 3414 2.3).
#[derive(Clone)]
struct Engine {
    id: Arc<[u8]>,
    boots: u32,
    time: u32,
    synced: Instant,
    keys: Arc<LocalizedKeys>,
}

impl Engine {
    /// The agent's clock now, from the last value it sent and our clock since.
    fn now(&self) -> (u32, u32) {
        let elapsed = self.synced.elapsed().as_secs().min(u32::MAX as u64) as u32;
        (self.boots, self.time.saturating_add(elapsed))
    }
}

/// How a walk ended, beyond the varbinds it delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WalkSummary {
    pub varbinds: usize,
    /// The walk ran into the end of the agent's MIB while still in the subtree.
    pub end_of_mib: Option<EndOfMib>,
    /// Nothing lay below the root, and the root's own value was delivered.
    pub root_fallback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOfMib {
    /// v2c/v3: endOfMibView at this OID.
    View(Oid),
    /// v1: noSuchName to the last GETNEXT.
    NoSuchName,
}

enum V3Reply {
    Response(Pdu),
    Report {
        error: Option<UsmError>,
        oid: Option<Oid>,
        boots: u32,
        time: u32,
        authenticated: bool,
    },
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("agent", &self.inner.agent)
            .field("version", &self.inner.credentials.version())
            .finish()
    }
}

impl Session {
    /// The same agent in another SNMP context: v1/v2c as the community
    /// `<community>@<context>` (net-snmp's and snmpsim's convention, which
    /// LibreNMS uses), v3 as the context name. In-flight limit shared.
    pub fn in_context(&self, context: &str) -> Session {
        let inner = &self.inner;
        let credentials = match &inner.credentials {
            Credentials::Community { version, community } => {
                let mut with = community.expose().to_vec();
                with.push(b'@');
                with.extend_from_slice(context.as_bytes());
                Credentials::Community {
                    version: *version,
                    community: crate::secret::Secret::new(with),
                }
            }
            Credentials::Usm { user, .. } => Credentials::Usm {
                user: user.clone(),
                context: context.as_bytes().to_vec(),
            },
        };
        Session {
            inner: Arc::new(SessionInner {
                client: inner.client.clone(),
                addr: inner.addr,
                agent: inner.agent.clone(),
                credentials,
                options: inner.options.clone(),
                in_flight: inner.in_flight.clone(),
                sizer: Mutex::new(BulkSizer::new(inner.options.max_repetitions)),
                engine: Mutex::new(inner.engine.lock().clone()),
                discovery: tokio::sync::Mutex::new(()),
                link: inner.link.clone(),
            }),
        }
    }

    /// Reserves a request-id for one request.
    fn ticket(&self) -> Ticket {
        match &self.inner.link {
            Link::Shared => Ticket::Shared(self.inner.client.transport.register(self.inner.addr)),
            Link::Tcp(tcp) => Ticket::Own(tcp.next_id()),
            Link::Dedicated(socket) => Ticket::Own(socket.next_id()),
        }
    }

    /// Sends `packet` (which carries the ticket's id) and waits for a reply
    /// that `accept` takes, within the session's timeout and retries.
    async fn exchange<T, E>(
        &self,
        ticket: &mut Ticket,
        packet: &[u8],
        accept: impl FnMut(&[u8]) -> Result<T, E>,
    ) -> Result<T, ExchangeError<E>> {
        let transport = &self.inner.client.transport;
        let opts = &self.inner.options;
        let counters = transport.counters();
        match (ticket, &self.inner.link) {
            (Ticket::Shared(reg), _) => {
                transport
                    .exchange(reg, packet, opts.timeout, opts.retries, accept)
                    .await
            }
            (Ticket::Own(id), Link::Tcp(tcp)) => {
                tcp.exchange(*id, packet, opts.timeout, opts.retries, counters, accept)
                    .await
            }
            (Ticket::Own(id), Link::Dedicated(socket)) => {
                socket.exchange(*id, packet, opts.timeout, opts.retries, counters, accept)
            }
            (Ticket::Own(_), Link::Shared) => {
                unreachable!("a session on the shared sockets takes shared tickets")
            }
        }
    }

    pub fn agent(&self) -> &str {
        &self.inner.agent
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn options(&self) -> &SessionOptions {
        &self.inner.options
    }

    pub fn version(&self) -> Version {
        self.inner.credentials.version()
    }

    /// The max-repetitions the next GETBULK of a walk will ask for.
    pub fn current_max_repetitions(&self) -> u32 {
        self.inner.sizer.lock().current()
    }

    /// GET of any number of OIDs, in PDUs of at most `max_oids_per_pdu`.
    /// Missing objects come back as noSuchObject/noSuchInstance values (v2c, v3).
    pub async fn get(&self, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        let per_pdu = self.inner.options.max_oids_per_pdu.max(1);
        if oids.len() <= per_pdu {
            return self.get_pdu(oids).await;
        }
        let parts =
            futures_util::future::try_join_all(oids.chunks(per_pdu).map(|c| self.get_pdu(c)))
                .await?;
        Ok(parts.concat())
    }

    async fn get_pdu(&self, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        self.one_pdu(PduType::GetRequest, oids).await
    }

    /// One GETNEXT PDU.
    pub async fn get_next(&self, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        self.one_pdu(PduType::GetNextRequest, oids).await
    }

    /// One GET or GETNEXT: an answer per OID, or the agent's error.
    async fn one_pdu(&self, pdu_type: PduType, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        let pdu = self.request(PduHeader::request(pdu_type, 0), oids).await?;
        self.check_status(&pdu, oids)?;
        self.check_count(&pdu, oids.len())?;
        Ok(pdu.varbinds)
    }

    /// One GETBULK PDU, as the agent answers it.
    pub async fn get_bulk(
        &self,
        non_repeaters: u32,
        max_repetitions: u32,
        oids: &[Oid],
    ) -> Result<Vec<VarBind>, Error> {
        let pdu = self
            .request(
                PduHeader::get_bulk(0, non_repeaters as i32, max_repetitions as i32),
                oids,
            )
            .await?;
        self.check_status(&pdu, oids)?;
        Ok(pdu.varbinds)
    }

    /// Every varbind below `root`, in agent order (or the root itself, when
    /// nothing lies below it and the root fallback is on).
    pub async fn walk(&self, root: &Oid) -> Result<Vec<VarBind>, Error> {
        let mut out = Vec::new();
        self.walk_with(root, |vb| out.push(vb)).await?;
        Ok(out)
    }

    /// Walks below `root`, handing each varbind to `f` as it arrives.
    pub async fn walk_with(
        &self,
        root: &Oid,
        mut f: impl FnMut(VarBind),
    ) -> Result<WalkSummary, Error> {
        let opts = &self.inner.options;
        let within = |list: &[Oid]| list.iter().any(|o| root.arcs().starts_with(o.arcs()));
        let bulk = self.version() != Version::V1 && opts.bulk && !within(&opts.no_bulk);
        let check_increasing = opts.check_increasing && !within(&opts.unordered);
        let mut last = root.clone();
        let mut count = 0usize;
        let mut end_of_mib = None;
        loop {
            let asked = self.inner.sizer.lock().current();
            let header = if bulk {
                PduHeader::get_bulk(0, 0, asked as i32)
            } else {
                PduHeader::request(PduType::GetNextRequest, 0)
            };
            let request_oid = [last.clone()];
            let pdu = self.request(header, &request_oid).await?;
            match pdu.error_status() {
                ErrorStatus::NoError => {}
                // v1 agents end a walk with noSuchName.
                ErrorStatus::NoSuchName if !bulk => {
                    end_of_mib = Some(EndOfMib::NoSuchName);
                    break;
                }
                ErrorStatus::TooBig if bulk && self.inner.sizer.lock().on_too_big(asked) => {
                    continue;
                }
                _ => {
                    self.check_status(&pdu, &request_oid)?;
                }
            }
            if pdu.varbinds.is_empty() {
                break;
            }
            let got = pdu.varbinds.len() as u32;
            let mut left_subtree = false;
            for vb in pdu.varbinds {
                if vb.value == Value::EndOfMibView && vb.oid.is_descendant_of(root) {
                    end_of_mib = Some(EndOfMib::View(vb.oid));
                    left_subtree = true;
                    break;
                }
                if vb.value == Value::EndOfMibView || !vb.oid.is_descendant_of(root) {
                    left_subtree = true;
                    break;
                }
                if check_increasing && vb.oid <= last {
                    return Err(Error::NotIncreasing {
                        agent: self.inner.agent.clone(),
                        root: Box::new(root.clone()),
                        previous: Box::new(last),
                        oid: Box::new(vb.oid),
                    });
                }
                count += 1;
                if count > opts.max_walk_varbinds {
                    return Err(Error::WalkLimit {
                        agent: self.inner.agent.clone(),
                        root: Box::new(root.clone()),
                        limit: opts.max_walk_varbinds,
                    });
                }
                last = vb.oid.clone();
                f(vb);
            }
            if bulk {
                self.inner
                    .sizer
                    .lock()
                    .on_response(asked, got, left_subtree);
            }
            if left_subtree {
                break;
            }
        }
        let mut root_fallback = false;
        if count == 0 && opts.walk_root_fallback {
            let pdu = self
                .request(
                    PduHeader::request(PduType::GetRequest, 0),
                    std::slice::from_ref(root),
                )
                .await?;
            if pdu.error_status() == ErrorStatus::NoError
                && let Some(vb) = pdu.varbinds.into_iter().next()
                && !vb.value.is_exception()
            {
                f(vb);
                count = 1;
                root_fallback = true;
            }
        }
        Ok(WalkSummary {
            varbinds: count,
            end_of_mib,
            root_fallback,
        })
    }

    fn check_status(&self, pdu: &Pdu, oids: &[Oid]) -> Result<(), Error> {
        let status = pdu.error_status();
        if status == ErrorStatus::NoError {
            return Ok(());
        }
        let index = pdu.header.error_index.max(0) as u32;
        let oid = (index as usize)
            .checked_sub(1)
            .and_then(|i| oids.get(i))
            .map(|o| Box::new(o.clone()));
        Err(Error::ErrorStatus {
            agent: self.inner.agent.clone(),
            status,
            index,
            oid,
        })
    }

    fn check_count(&self, pdu: &Pdu, expected: usize) -> Result<(), Error> {
        if pdu.varbinds.len() == expected {
            return Ok(());
        }
        Err(Error::BadResponse {
            agent: self.inner.agent.clone(),
            reason: format!(
                "{} varbinds in the response to a request for {expected}",
                pdu.varbinds.len()
            ),
        })
    }

    /// Sends one request PDU (its request-id is filled in here) and returns
    /// the Response-PDU, whatever its error-status.
    async fn request(&self, header: PduHeader, oids: &[Oid]) -> Result<Pdu, Error> {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self
            .inner
            .in_flight
            .acquire()
            .await
            .expect("per-agent semaphore is never closed");
        match &self.inner.credentials {
            Credentials::Community { version, community } => {
                self.request_community(*version, community.expose(), header, oids)
                    .await
            }
            Credentials::Usm { user, context } => {
                self.request_v3(user, context, header, oids).await
            }
        }
    }

    fn exchange_error<E: std::fmt::Display>(&self, e: ExchangeError<E>) -> Error {
        let agent = self.inner.agent.clone();
        match e {
            ExchangeError::Timeout => Error::Timeout { agent },
            ExchangeError::Rejected(reason) => Error::BadResponse {
                agent,
                reason: reason.to_string(),
            },
            ExchangeError::Send(io) => Error::Send {
                agent,
                reason: io.to_string(),
            },
            ExchangeError::NoSocket(family) => Error::Send {
                agent,
                reason: format!("no {family} socket"),
            },
            ExchangeError::Connection(io) => Error::Connection {
                agent,
                reason: io.to_string(),
            },
        }
    }

    async fn request_community(
        &self,
        version: Version,
        community: &[u8],
        mut header: PduHeader,
        oids: &[Oid],
    ) -> Result<Pdu, Error> {
        let mut ticket = self.ticket();
        let id = ticket.id();
        header.request_id = id;
        let mut w = Writer::with_capacity(48 + community.len() + oids.len() * 24);
        pdu::encode_community_message(&mut w, version, community, &header, |w| {
            pdu::write_request_varbinds(w, oids)
        });
        let packet = w.into_vec();
        self.exchange(&mut ticket, &packet, |bytes| {
            accept_community_reply(bytes, version, id)
        })
        .await
        .map_err(|e| self.exchange_error(e))
    }

    async fn request_v3(
        &self,
        user: &UsmUser,
        context: &[u8],
        mut header: PduHeader,
        oids: &[Oid],
    ) -> Result<Pdu, Error> {
        let mut recoveries = 0;
        loop {
            let engine = self.engine(user).await?;
            let mut ticket = self.ticket();
            header.request_id = ticket.id();
            let packet = self.encode_v3(user, context, &engine, ticket.id(), &header, oids);
            let reply = self
                .exchange(&mut ticket, &packet, |bytes| {
                    self.accept_v3_reply(bytes, user, &engine)
                })
                .await
                .map_err(|e| self.exchange_error(e))?;
            match reply {
                V3Reply::Response(pdu) => return Ok(pdu),
                V3Reply::Report {
                    error: Some(UsmError::NotInTimeWindow),
                    boots,
                    time,
                    authenticated,
                    ..
                } if recoveries < 2
                    && (authenticated || user.level == SecurityLevel::NoAuthNoPriv) =>
                {
                    // The agent rebooted or our clock drifted: take its clock.
                    recoveries += 1;
                    if let Some(e) = self.inner.engine.lock().as_mut() {
                        e.boots = boots;
                        e.time = time;
                        e.synced = Instant::now();
                    }
                }
                V3Reply::Report {
                    error: Some(UsmError::UnknownEngineId),
                    ..
                } if recoveries < 2 => {
                    // The device behind the address changed: discover again.
                    recoveries += 1;
                    *self.inner.engine.lock() = None;
                }
                V3Reply::Report {
                    error: Some(error), ..
                } => {
                    return Err(Error::Usm {
                        agent: self.inner.agent.clone(),
                        error,
                    });
                }
                V3Reply::Report { oid, .. } => {
                    return Err(Error::BadResponse {
                        agent: self.inner.agent.clone(),
                        reason: format!(
                            "report {}",
                            oid.map_or_else(|| "without varbinds".to_string(), |o| o.to_string())
                        ),
                    });
                }
            }
        }
    }

    fn encode_v3(
        &self,
        user: &UsmUser,
        context: &[u8],
        engine: &Engine,
        msg_id: i32,
        header: &PduHeader,
        oids: &[Oid],
    ) -> Vec<u8> {
        let mut scoped =
            Writer::with_capacity(48 + context.len() + engine.id.len() + oids.len() * 24);
        pdu::encode_scoped_pdu(&mut scoped, &engine.id, context, header, |w| {
            pdu::write_request_varbinds(w, oids)
        });
        let (boots, time) = engine.now();
        usm::seal_message(
            scoped.as_slice(),
            &Envelope {
                msg_id,
                max_size: V3_MAX_MESSAGE_SIZE,
                reportable: true,
                engine_id: &engine.id,
                engine_boots: boots,
                engine_time: time,
                user_name: &user.name,
                keys: Some(&engine.keys),
                encrypt: engine.keys.privacy.is_some(),
                salt: self.inner.client.keys.next_salt(),
            },
        )
    }

    fn accept_v3_reply(
        &self,
        bytes: &[u8],
        user: &UsmUser,
        engine: &Engine,
    ) -> Result<V3Reply, Rejection> {
        let Message::V3(m) = pdu::decode_message(bytes)? else {
            return Err(Rejection::Other("not an SNMPv3 message".into()));
        };
        let authenticated = m.flags & flags::AUTH != 0;
        if authenticated {
            if m.usm.engine_id != &engine.id[..] {
                return Err(Rejection::Other(
                    "authenticated reply from another engine".into(),
                ));
            }
            if engine.keys.auth.is_none() {
                return Err(Rejection::Other(
                    "authenticated reply to a noAuth request".into(),
                ));
            }
            if !engine
                .keys
                .verify(bytes, m.auth_params_offset, m.usm.auth_params)
            {
                return Err(Rejection::Other(
                    "reply failed authentication (wrong digest)".into(),
                ));
            }
        }
        if matches!(m.data, ScopedData::Encrypted(_))
            && (!authenticated || m.flags & flags::PRIV == 0)
        {
            return Err(Rejection::Other(
                "encrypted reply without privacy flags".into(),
            ));
        }
        let scoped = usm::open_scoped(&m, Some(&engine.keys))
            .map_err(|e| Rejection::Other(e.to_string()))?;
        let scoped = pdu::decode_scoped_pdu(&scoped).map_err(|e| {
            // Offsets inside decrypted data mean nothing to a reader; say what it was.
            Rejection::Other(format!(
                "undecodable scoped PDU ({e}); wrong privacy passphrase?"
            ))
        })?;
        let pdu = scoped.pdu;
        match pdu.header.pdu_type {
            PduType::Report => {
                let oid = pdu.varbinds.first().map(|vb| vb.oid.clone());
                Ok(V3Reply::Report {
                    error: oid
                        .as_ref()
                        .and_then(|o| UsmError::from_report_oid(o.arcs())),
                    oid,
                    boots: m.usm.engine_boots,
                    time: m.usm.engine_time,
                    authenticated,
                })
            }
            PduType::Response => {
                if user.level >= SecurityLevel::AuthNoPriv && !authenticated {
                    return Err(Rejection::Other("unauthenticated response".into()));
                }
                if user.level == SecurityLevel::AuthPriv && matches!(m.data, ScopedData::Plain(_)) {
                    return Err(Rejection::Other(
                        "unencrypted response to an authPriv request".into(),
                    ));
                }
                Ok(V3Reply::Response(pdu))
            }
            other => Err(Rejection::Other(format!("unexpected {other:?}"))),
        }
    }

    /// The agent's engine, discovered once (RFC 3414 section 4) and shared by
    /// every request of the session.
    async fn engine(&self, user: &UsmUser) -> Result<Engine, Error> {
        if let Some(e) = self.inner.engine.lock().clone() {
            return Ok(e);
        }
        let _single_flight = self.inner.discovery.lock().await;
        if let Some(e) = self.inner.engine.lock().clone() {
            return Ok(e);
        }
        let mut ticket = self.ticket();
        let packet = encode_discovery(ticket.id(), ticket.id());
        let (engine_id, boots, time) = self
            .exchange(&mut ticket, &packet, |bytes| {
                match pdu::decode_message(bytes)? {
                    Message::V3(m) if !m.usm.engine_id.is_empty() => Ok((
                        m.usm.engine_id.to_vec(),
                        m.usm.engine_boots,
                        m.usm.engine_time,
                    )),
                    _ => Err(Rejection::Other(
                        "discovery reply without an engine ID".into(),
                    )),
                }
            })
            .await
            .map_err(|e| self.exchange_error(e))?;
        // Localizing may hash a megabyte per passphrase: keep it off the
        // runtime threads.
        let client = self.inner.client.clone();
        let user = user.clone();
        let id_for_keys = engine_id.clone();
        let keys = tokio::task::spawn_blocking(move || client.keys.localized(&user, &id_for_keys))
            .await
            .map_err(|e| Error::BadResponse {
                agent: self.inner.agent.clone(),
                reason: format!("key localization failed: {e}"),
            })?;
        let engine = Engine {
            id: engine_id.into(),
            boots,
            time,
            synced: Instant::now(),
            keys,
        };
        *self.inner.engine.lock() = Some(engine.clone());
        Ok(engine)
    }
}

/// The engine-ID discovery request of RFC 3414 section 4: an empty,
/// unauthenticated, reportable GET with no engine ID and no user.
pub(crate) fn encode_discovery(msg_id: i32, request_id: i32) -> Vec<u8> {
    let mut scoped = Writer::with_capacity(64);
    pdu::encode_scoped_pdu(
        &mut scoped,
        &[],
        &[],
        &PduHeader::request(PduType::GetRequest, request_id),
        |_| {},
    );
    usm::seal_message(
        scoped.as_slice(),
        &Envelope {
            msg_id,
            max_size: V3_MAX_MESSAGE_SIZE,
            reportable: true,
            engine_id: &[],
            engine_boots: 0,
            engine_time: 0,
            user_name: &[],
            keys: None,
            encrypt: false,
            salt: 0,
        },
    )
}

fn accept_community_reply(bytes: &[u8], version: Version, id: i32) -> Result<Pdu, Rejection> {
    match pdu::decode_message(bytes)? {
        Message::Community {
            version: v, pdu, ..
        } if v == version
            && pdu.header.pdu_type == PduType::Response
            && pdu.header.request_id == id =>
        {
            Ok(pdu)
        }
        Message::Community {
            version: v, pdu, ..
        } => Err(Rejection::Other(format!(
            "unexpected {:?} (version {v}, request-id {})",
            pdu.header.pdu_type, pdu.header.request_id
        ))),
        Message::V3(_) => Err(Rejection::Other(
            "SNMPv3 reply to a community request".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_sizer_halves_on_too_big_and_never_regrows_past_it() {
        let mut s = BulkSizer::new(40);
        assert!(s.on_too_big(40));
        assert_eq!(s.current(), 20);
        for _ in 0..20 {
            s.on_response(s.current(), s.current(), false);
        }
        assert_eq!(s.current(), 39);
        assert!(s.on_too_big(39));
        let mut one = BulkSizer::new(1);
        assert!(!one.on_too_big(1));
    }

    #[test]
    fn bulk_sizer_follows_an_agent_that_truncates() {
        let mut s = BulkSizer::new(50);
        s.on_response(50, 22, false);
        assert_eq!(s.current(), 22);
        // The end of a subtree is not a truncation.
        s.on_response(22, 3, true);
        assert_eq!(s.current(), 22);
    }
}
