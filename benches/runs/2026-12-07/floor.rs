// The floor under one walk's CPU on this machine: the same number of
// request/reply round trips as `ironpoll walk -Cr10` of the chassis500
// agent makes (2,218), each a blocking send and recv on a connected UDP
// socket, with nothing decoded or printed. Every request is the same
// GETBULK (max-repetitions 10) of 1.3.6.1, so every reply is about the
// size of a walk's.
//   rustc -O floor.rs && perf stat -e task-clock ./floor AGENT 2218
use std::net::UdpSocket;
use std::time::Duration;

fn main() {
    let agent = std::env::args().nth(1).expect("AGENT");
    let requests: usize = std::env::args()
        .nth(2)
        .expect("REQUESTS")
        .parse()
        .expect("a number of requests");
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.connect(&agent).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    #[rustfmt::skip]
    let request: [u8; 38] = [
        0x30, 0x24, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c',
        0xa5, 0x17, 0x02, 0x04, 1, 2, 3, 4, 0x02, 0x01, 0x00, 0x02, 0x01, 0x0a,
        0x30, 0x09, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x06, 0x01, 0x05, 0x00,
    ];
    let mut buf = vec![0u8; 65536];
    let mut bytes = 0;
    for _ in 0..requests {
        socket.send(&request).unwrap();
        bytes += socket.recv(&mut buf).unwrap();
    }
    eprintln!("{} bytes per reply", bytes / requests);
}
