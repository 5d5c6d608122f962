//! Any datagram, however hostile, decodes to a message or an error: never a
//! panic, an out-of-bounds read or unbounded work. Whatever decodes must
//! encode back to something that decodes to the same message. The same
//! bytes at the head of a TCP stream are cut into a message within them
//! and within the bound, or refused.

#![no_main]

use ironpoll::snmp::ber::Writer;
use ironpoll::snmp::pdu::{self, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pdu::peek_request_id(data);
    if let Ok(Some(len)) = ironpoll::snmp::tcp::message_len(data) {
        assert!(len <= data.len() && len <= ironpoll::snmp::tcp::MAX_MESSAGE);
    }
    let _ = pdu::decode_scoped_pdu(data);
    if let Ok(Message::Community { version, community, pdu }) = pdu::decode_message(data) {
        let mut w = Writer::with_capacity(64);
        pdu::encode_community_message(&mut w, version, community, &pdu.header, |w| {
            for vb in pdu.varbinds.iter().rev() {
                vb.encode(w);
            }
        });
        match pdu::decode_message(w.as_slice()) {
            Ok(Message::Community { pdu: again, .. }) => assert_eq!(again, pdu),
            other => panic!("re-encoded message does not decode back: {other:?}"),
        }
    }
});
