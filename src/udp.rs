//! Batched UDP: `recvmmsg`/`sendmmsg` move up to
//! [`BATCH`] datagrams per system call, and IP_PKTINFO / IPV6_PKTINFO tell
//! which local address a datagram was sent to and set the source of the
//! reply, so one wildcard socket can be thousands of loopback agents. The
//! SNMP transport reads its replies with it too.
//!
//! This is the only place with raw socket calls; everything is checked
//! against the lengths the kernel returns.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest request the simulator reads; longer ones are dropped as truncated.
pub const MAX_REQUEST: usize = 16 * 1024;
/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// Room for one in6_pktinfo control message (the larger of the two).
const CONTROL_LEN: usize = 64;

/// One received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// The address the datagram was sent to, when the socket reports it.
    pub to: Option<IpAddr>,
    pub truncated: bool,
}

/// Reusable buffers for one socket's receive and send batches.
pub struct Batcher {
    bufs: Vec<Vec<u8>>,
    pub received: Vec<Received>,
    names: Vec<libc::sockaddr_storage>,
    controls: Vec<[u8; CONTROL_LEN]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside `iovecs` and `headers` are rebuilt before
// every system call and never dereferenced outside one; a Batcher moved to
// another thread carries only its own buffers.
unsafe impl Send for Batcher {}

impl Batcher {
    /// Room for `slots` datagrams (at most [`BATCH`]) of up to `slot_size`
    /// bytes; a longer datagram is reported truncated.
    pub fn new(slots: usize, slot_size: usize) -> Batcher {
        let slots = slots.clamp(1, BATCH);
        Batcher {
            bufs: (0..slots).map(|_| vec![0u8; slot_size]).collect(),
            received: Vec::with_capacity(slots),
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
            names: vec![unsafe { zeroed() }; slots],
            controls: vec![[0u8; CONTROL_LEN]; slots],
            iovecs: Vec::with_capacity(slots),
            headers: Vec::with_capacity(slots),
        }
    }

    /// How many datagrams one [`recv`](Batcher::recv) can return.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// The bytes of received datagram `i`.
    pub fn datagram(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.received[i].len]
    }

    /// Receives up to [`capacity`](Batcher::capacity) datagrams without
    /// blocking; `WouldBlock` when none is waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.recv_flags(fd, libc::MSG_DONTWAIT)
    }

    /// On a blocking socket: waits for one datagram (up to the socket's
    /// SO_RCVTIMEO, then `WouldBlock`) and takes whatever else is queued.
    /// SO_RCVTIMEO counts in scheduler ticks (4 ms at HZ=250); where a
    /// wait must end on time, use [`wait_readable`] and [`Batcher::recv`].
    pub fn recv_wait(&mut self, fd: RawFd) -> io::Result<usize> {
        self.recv_flags(fd, libc::MSG_WAITFORONE)
    }

    fn recv_flags(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        let slots = self.bufs.len();
        self.received.clear();
        self.iovecs.clear();
        self.headers.clear();
        for i in 0..slots {
            self.iovecs.push(libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            });
        }
        for i in 0..slots {
            // SAFETY: mmsghdr is plain data; every pointer is set below.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = CONTROL_LEN as _;
            self.headers.push(h);
        }
        // SAFETY: `headers` holds `slots` valid mmsghdr whose buffers live
        // in `self` for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                slots as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let h = &self.headers[i];
            let len = (h.msg_len as usize).min(self.bufs[i].len());
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let from = sockaddr_to_std(&self.names[i])
                .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
            let to = packet_destination(&h.msg_hdr);
            self.received.push(Received {
                len,
                from,
                to,
                truncated,
            });
        }
        Ok(n)
    }
}

/// One datagram to send: its bytes, where to, and from which local address
/// (when the socket is a wildcard serving many addresses).
pub struct Outgoing<'a> {
    pub bytes: &'a [u8],
    pub to: SocketAddr,
    pub from: Option<IpAddr>,
}

/// Sends a batch without blocking; returns how many were sent (the rest had
/// `WouldBlock`).
pub fn send(fd: RawFd, items: &[Outgoing<'_>]) -> io::Result<usize> {
    send_flags(fd, items, libc::MSG_DONTWAIT)
}

/// Sends a batch on a blocking socket, waiting for buffer space.
pub fn send_wait(fd: RawFd, items: &[Outgoing<'_>]) -> io::Result<usize> {
    send_flags(fd, items, 0)
}

fn send_flags(fd: RawFd, items: &[Outgoing<'_>], flags: libc::c_int) -> io::Result<usize> {
    let n = items.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut names: [MaybeUninit<libc::sockaddr_storage>; BATCH] = [MaybeUninit::uninit(); BATCH];
    let mut controls = [[0u8; CONTROL_LEN]; BATCH];
    let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
    // SAFETY: mmsghdr is plain data; all-zero is valid and fields are set below.
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for i in 0..n {
        let item = &items[i];
        let (storage, len) = std_to_sockaddr(item.to);
        names[i].write(storage);
        iovecs[i].write(libc::iovec {
            iov_base: item.bytes.as_ptr() as *mut libc::c_void,
            iov_len: item.bytes.len(),
        });
        let h = &mut headers[i].msg_hdr;
        h.msg_name = names[i].as_mut_ptr().cast();
        h.msg_namelen = len;
        h.msg_iov = iovecs[i].as_mut_ptr();
        h.msg_iovlen = 1;
        if let Some(src) = item.from {
            let clen = write_source_control(&mut controls[i], src);
            h.msg_control = controls[i].as_mut_ptr().cast();
            h.msg_controllen = clen as _;
        }
    }
    // SAFETY: the first n headers point at buffers alive until the call returns.
    let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), n as libc::c_uint, flags) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Raises the receive buffer, past `net.core.rmem_max` when the process may.
pub fn set_receive_buffer(socket: &socket2::Socket, bytes: usize) {
    if socket.set_recv_buffer_size(bytes).is_ok() && socket.recv_buffer_size().unwrap_or(0) >= bytes
    {
        return;
    }
    // SO_RCVBUFFORCE ignores rmem_max; it needs CAP_NET_ADMIN and is simply
    // refused otherwise, leaving the capped size in place.
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let value = bytes.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: a valid fd and a correctly sized option value.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Asks the kernel to report each datagram's destination address.
pub fn enable_packet_info(fd: RawFd, ipv6: bool) -> io::Result<()> {
    let one: libc::c_int = 1;
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    // SAFETY: valid fd and option value of the declared size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn packet_destination(h: &libc::msghdr) -> Option<IpAddr> {
    if h.msg_control.is_null() || h.msg_controllen < size_of::<libc::cmsghdr>() {
        return None;
    }
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // cmsgs; CMSG_FIRSTHDR/NXTHDR stay within them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let cm = &*c;
            if cm.cmsg_level == libc::IPPROTO_IP && cm.cmsg_type == libc::IP_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in_pktinfo);
                return Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            if cm.cmsg_level == libc::IPPROTO_IPV6 && cm.cmsg_type == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in6_pktinfo);
                return Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

fn write_source_control(buf: &mut [u8; CONTROL_LEN], src: IpAddr) -> usize {
    // SAFETY: buf is CONTROL_LEN bytes, larger than CMSG_SPACE of either
    // pktinfo struct; the header and data are written within it.
    unsafe {
        let c = buf.as_mut_ptr() as *mut libc::cmsghdr;
        match src {
            IpAddr::V4(a) => {
                let space = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(a).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in_pktinfo, info);
                space
            }
            IpAddr::V6(a) => {
                let space = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: a.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in6_pktinfo, info);
                space
            }
        }
    }
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read_unaligned((s as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read_unaligned((s as *const libc::sockaddr_storage).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; it is filled as the family says.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe {
                std::ptr::write_unaligned((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
            };
            (storage, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6.
            unsafe {
                std::ptr::write_unaligned(
                    (&mut storage as *mut libc::sockaddr_storage).cast(),
                    sin6,
                )
            };
            (storage, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Waits until `fd` has a datagram to read or `timeout` has passed (false),
/// on a high-resolution timer.
pub fn wait_readable(fd: RawFd, timeout: std::time::Duration) -> io::Result<bool> {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let spec = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one valid pollfd, a valid timespec, and no signal mask.
    let n = unsafe { libc::ppoll(&mut poll, 1, &spec, std::ptr::null()) };
    match n {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(false),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_wildcard_socket_learns_the_destination_and_replies_from_it() {
        let server = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        enable_packet_info(server.as_raw_fd(), false).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let agent: SocketAddr = format!("127.3.4.5:{port}").parse().unwrap();
        client.send_to(b"ping", agent).unwrap();
        let mut batch = Batcher::new(BATCH, MAX_REQUEST);
        let mut n = 0;
        for _ in 0..200 {
            match batch.recv(server.as_raw_fd()) {
                Ok(k) => {
                    n = k;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(n, 1);
        assert_eq!(batch.datagram(0), b"ping");
        let r = batch.received[0];
        assert_eq!(r.to, Some("127.3.4.5".parse().unwrap()));
        let sent = send(
            server.as_raw_fd(),
            &[Outgoing {
                bytes: b"pong",
                to: r.from,
                from: r.to,
            }],
        )
        .unwrap();
        assert_eq!(sent, 1);
        let mut buf = [0u8; 16];
        let (len, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"pong");
        assert_eq!(
            from, agent,
            "the reply comes from the address that was asked"
        );
    }
}
