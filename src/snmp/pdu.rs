//! SNMP messages and PDUs (RFC 3416 PDUs in RFC 1157/1901 and RFC 3412 messages).
//!
//! Decoding borrows from the datagram where it can (community, v3 security
//! parameters, encrypted payload) and copies only the varbinds. Encoding goes
//! through [`Writer`], so the varbind list is written last-first.

use std::fmt;

use super::ber::{DecodeError, DecodeErrorKind, DecodeResult, Reader, Writer, tag};
use super::oid::Oid;
use super::value::VarBind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Version {
    /// The msgVersion field: 0, 1 or 3.
    pub fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }

    pub fn from_wire(v: i64) -> Option<Version> {
        match v {
            0 => Some(Version::V1),
            1 => Some(Version::V2c),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "1",
            Version::V2c => "2c",
            Version::V3 => "3",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PduType {
    GetRequest,
    GetNextRequest,
    Response,
    SetRequest,
    GetBulkRequest,
    InformRequest,
    SnmpV2Trap,
    Report,
}

impl PduType {
    pub fn tag(self) -> u8 {
        match self {
            PduType::GetRequest => 0xa0,
            PduType::GetNextRequest => 0xa1,
            PduType::Response => 0xa2,
            PduType::SetRequest => 0xa3,
            PduType::GetBulkRequest => 0xa5,
            PduType::InformRequest => 0xa6,
            PduType::SnmpV2Trap => 0xa7,
            PduType::Report => 0xa8,
        }
    }

    /// The v1 Trap-PDU (0xa4) has another layout and is not accepted here.
    pub fn from_tag(t: u8) -> Option<PduType> {
        Some(match t {
            0xa0 => PduType::GetRequest,
            0xa1 => PduType::GetNextRequest,
            0xa2 => PduType::Response,
            0xa3 => PduType::SetRequest,
            0xa5 => PduType::GetBulkRequest,
            0xa6 => PduType::InformRequest,
            0xa7 => PduType::SnmpV2Trap,
            0xa8 => PduType::Report,
            _ => return None,
        })
    }
}

/// The error-status of a response (RFC 3416 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorStatus {
    NoError,
    TooBig,
    NoSuchName,
    BadValue,
    ReadOnly,
    GenErr,
    NoAccess,
    WrongType,
    WrongLength,
    WrongEncoding,
    WrongValue,
    NoCreation,
    InconsistentValue,
    ResourceUnavailable,
    CommitFailed,
    UndoFailed,
    AuthorizationError,
    NotWritable,
    InconsistentName,
    Unknown(i32),
}

impl ErrorStatus {
    pub fn from_wire(v: i32) -> ErrorStatus {
        use ErrorStatus::*;
        match v {
            0 => NoError,
            1 => TooBig,
            2 => NoSuchName,
            3 => BadValue,
            4 => ReadOnly,
            5 => GenErr,
            6 => NoAccess,
            7 => WrongType,
            8 => WrongLength,
            9 => WrongEncoding,
            10 => WrongValue,
            11 => NoCreation,
            12 => InconsistentValue,
            13 => ResourceUnavailable,
            14 => CommitFailed,
            15 => UndoFailed,
            16 => AuthorizationError,
            17 => NotWritable,
            18 => InconsistentName,
            other => Unknown(other),
        }
    }

    pub fn wire(self) -> i32 {
        use ErrorStatus::*;
        match self {
            NoError => 0,
            TooBig => 1,
            NoSuchName => 2,
            BadValue => 3,
            ReadOnly => 4,
            GenErr => 5,
            NoAccess => 6,
            WrongType => 7,
            WrongLength => 8,
            WrongEncoding => 9,
            WrongValue => 10,
            NoCreation => 11,
            InconsistentValue => 12,
            ResourceUnavailable => 13,
            CommitFailed => 14,
            UndoFailed => 15,
            AuthorizationError => 16,
            NotWritable => 17,
            InconsistentName => 18,
            Unknown(v) => v,
        }
    }
}

impl fmt::Display for ErrorStatus {
    /// The names RFC 3416 gives, as net-snmp prints them in parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorStatus::*;
        let name = match self {
            NoError => "noError",
            TooBig => "tooBig",
            NoSuchName => "noSuchName",
            BadValue => "badValue",
            ReadOnly => "readOnly",
            GenErr => "genErr",
            NoAccess => "noAccess",
            WrongType => "wrongType",
            WrongLength => "wrongLength",
            WrongEncoding => "wrongEncoding",
            WrongValue => "wrongValue",
            NoCreation => "noCreation",
            InconsistentValue => "inconsistentValue",
            ResourceUnavailable => "resourceUnavailable",
            CommitFailed => "commitFailed",
            UndoFailed => "undoFailed",
            AuthorizationError => "authorizationError",
            NotWritable => "notWritable",
            InconsistentName => "inconsistentName",
            Unknown(v) => return write!(f, "error-status {v}"),
        };
        f.write_str(name)
    }
}

/// The fixed fields of a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PduHeader {
    pub pdu_type: PduType,
    pub request_id: i32,
    /// error-status; non-repeaters in a GetBulkRequest.
    pub error_status: i32,
    /// error-index; max-repetitions in a GetBulkRequest.
    pub error_index: i32,
}

impl PduHeader {
    pub fn request(pdu_type: PduType, request_id: i32) -> PduHeader {
        PduHeader {
            pdu_type,
            request_id,
            error_status: 0,
            error_index: 0,
        }
    }

    pub fn get_bulk(request_id: i32, non_repeaters: i32, max_repetitions: i32) -> PduHeader {
        PduHeader {
            pdu_type: PduType::GetBulkRequest,
            request_id,
            error_status: non_repeaters,
            error_index: max_repetitions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub header: PduHeader,
    pub varbinds: Vec<VarBind>,
}

impl Pdu {
    pub fn error_status(&self) -> ErrorStatus {
        ErrorStatus::from_wire(self.header.error_status)
    }

    /// Decodes one PDU element.
    pub fn decode(r: &mut Reader<'_>) -> DecodeResult<Pdu> {
        let at = r.offset();
        let tlv = r.read_tlv()?;
        let pdu_type = PduType::from_tag(tlv.tag).ok_or(DecodeError {
            kind: DecodeErrorKind::UnknownPduType,
            offset: at,
        })?;
        let mut body = r.sub_reader(&tlv);
        let request_id = body.read_i32()?;
        let error_status = body.read_i32()?;
        let error_index = body.read_i32()?;
        let mut list = body.read_constructed(tag::SEQUENCE)?;
        body.expect_end()?;
        // A varbind takes at least 14 bytes on the wire (about 25 for an
        // interface counter): size the list once instead of growing it.
        let mut varbinds = Vec::with_capacity(list.remaining() / 14 + 1);
        while !list.is_empty() {
            varbinds.push(VarBind::decode(&mut list)?);
        }
        Ok(Pdu {
            header: PduHeader {
                pdu_type,
                request_id,
                error_status,
                error_index,
            },
            varbinds,
        })
    }

    pub fn encode(&self, w: &mut Writer) {
        encode_pdu(w, &self.header, |w| {
            for vb in self.varbinds.iter().rev() {
                vb.encode(w);
            }
        });
    }
}

/// Writes a PDU whose varbinds `write_varbinds` writes, last varbind first.
pub fn encode_pdu(w: &mut Writer, header: &PduHeader, write_varbinds: impl FnOnce(&mut Writer)) {
    let pdu_mark = w.mark();
    let list_mark = w.mark();
    write_varbinds(w);
    w.wrap(list_mark, tag::SEQUENCE);
    w.put_integer(tag::INTEGER, header.error_index as i64);
    w.put_integer(tag::INTEGER, header.error_status as i64);
    w.put_integer(tag::INTEGER, header.request_id as i64);
    w.wrap(pdu_mark, header.pdu_type.tag());
}

/// Writes the varbinds of a request: each OID with a NULL value.
pub fn write_request_varbinds(w: &mut Writer, oids: &[Oid]) {
    for oid in oids.iter().rev() {
        let mark = w.mark();
        w.put_empty(tag::NULL);
        w.put_oid(oid.arcs());
        w.wrap(mark, tag::SEQUENCE);
    }
}

/// Writes a whole v1 or v2c message around a PDU.
pub fn encode_community_message(
    w: &mut Writer,
    version: Version,
    community: &[u8],
    header: &PduHeader,
    write_varbinds: impl FnOnce(&mut Writer),
) {
    let mark = w.mark();
    encode_pdu(w, header, write_varbinds);
    w.put_octets(tag::OCTET_STRING, community);
    w.put_integer(tag::INTEGER, version.wire());
    w.wrap(mark, tag::SEQUENCE);
}

/// The msgFlags bits of SNMPv3.
pub mod flags {
    pub const AUTH: u8 = 0x01;
    pub const PRIV: u8 = 0x02;
    pub const REPORTABLE: u8 = 0x04;
}

/// The USM security parameters of a v3 message (RFC 3414 section 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsmParams<'a> {
    pub engine_id: &'a [u8],
    pub engine_boots: u32,
    pub engine_time: u32,
    pub user_name: &'a [u8],
    pub auth_params: &'a [u8],
    pub priv_params: &'a [u8],
}

/// The msgData of a v3 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopedData<'a> {
    /// The whole ScopedPDU element, tag and length included.
    Plain(&'a [u8]),
    /// The content of the encryptedPDU OCTET STRING.
    Encrypted(&'a [u8]),
}

/// A decoded SNMPv3 message. Authentication is checked by the caller, which
/// holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3Message<'a> {
    pub msg_id: i32,
    pub max_size: i32,
    pub flags: u8,
    pub usm: UsmParams<'a>,
    /// Where msgAuthenticationParameters' content starts in the datagram.
    pub auth_params_offset: usize,
    pub data: ScopedData<'a>,
}

/// A decoded message of any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Community {
        version: Version,
        community: &'a [u8],
        pdu: Pdu,
    },
    V3(V3Message<'a>),
}

fn read_u31(r: &mut Reader<'_>) -> DecodeResult<u32> {
    let at = r.offset();
    let v = r.read_integer()?;
    if !(0..=i32::MAX as i64).contains(&v) {
        return Err(DecodeError {
            kind: DecodeErrorKind::IntegerOverflow,
            offset: at,
        });
    }
    Ok(v as u32)
}

/// Decodes a datagram into a message. Trailing bytes after the message are an error.
pub fn decode_message(buf: &[u8]) -> DecodeResult<Message<'_>> {
    let mut outer = Reader::new(buf);
    let mut msg = outer.read_constructed(tag::SEQUENCE)?;
    outer.expect_end()?;
    let at = msg.offset();
    let version = Version::from_wire(msg.read_integer()?).ok_or(DecodeError {
        kind: DecodeErrorKind::UnsupportedVersion,
        offset: at,
    })?;
    if version != Version::V3 {
        let community = msg.read_octet_string()?;
        let pdu = Pdu::decode(&mut msg)?;
        msg.expect_end()?;
        return Ok(Message::Community {
            version,
            community,
            pdu,
        });
    }
    let mut global = msg.read_constructed(tag::SEQUENCE)?;
    let msg_id = global.read_i32()?;
    let max_size = global.read_i32()?;
    let flag_bytes = global.read_octet_string()?;
    let flags = flag_bytes.first().copied().unwrap_or(0);
    let model_at = global.offset();
    if global.read_integer()? != 3 {
        return Err(DecodeError {
            kind: DecodeErrorKind::UnsupportedSecurityModel,
            offset: model_at,
        });
    }
    global.expect_end()?;
    let sec_tlv = msg.read_expect(tag::OCTET_STRING)?;
    let mut sec_outer = msg.sub_reader(&sec_tlv);
    let mut sec = sec_outer.read_constructed(tag::SEQUENCE)?;
    sec_outer.expect_end()?;
    let engine_id = sec.read_octet_string()?;
    let engine_boots = read_u31(&mut sec)?;
    let engine_time = read_u31(&mut sec)?;
    let user_name = sec.read_octet_string()?;
    let auth_tlv = sec.read_expect(tag::OCTET_STRING)?;
    let priv_params = sec.read_octet_string()?;
    sec.expect_end()?;
    let data = match msg.peek_tag() {
        Some(tag::OCTET_STRING) => ScopedData::Encrypted(msg.read_octet_string()?),
        _ => {
            let start = msg.offset();
            msg.read_expect(tag::SEQUENCE)?;
            ScopedData::Plain(&buf[start..msg.offset()])
        }
    };
    msg.expect_end()?;
    Ok(Message::V3(V3Message {
        msg_id,
        max_size,
        flags,
        usm: UsmParams {
            engine_id,
            engine_boots,
            engine_time,
            user_name,
            auth_params: auth_tlv.content,
            priv_params,
        },
        auth_params_offset: auth_tlv.offset,
        data,
    }))
}

/// A decoded ScopedPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPdu<'a> {
    pub context_engine_id: &'a [u8],
    pub context_name: &'a [u8],
    pub pdu: Pdu,
}

/// Decodes a ScopedPDU element. Bytes after it are ignored, because DES-CBC
/// pads the plaintext to its block size.
pub fn decode_scoped_pdu(buf: &[u8]) -> DecodeResult<ScopedPdu<'_>> {
    let mut outer = Reader::new(buf);
    let mut s = outer.read_constructed(tag::SEQUENCE)?;
    let context_engine_id = s.read_octet_string()?;
    let context_name = s.read_octet_string()?;
    let pdu = Pdu::decode(&mut s)?;
    s.expect_end()?;
    Ok(ScopedPdu {
        context_engine_id,
        context_name,
        pdu,
    })
}

/// Writes a ScopedPDU element.
pub fn encode_scoped_pdu(
    w: &mut Writer,
    context_engine_id: &[u8],
    context_name: &[u8],
    header: &PduHeader,
    write_varbinds: impl FnOnce(&mut Writer),
) {
    let mark = w.mark();
    encode_pdu(w, header, write_varbinds);
    w.put_octets(tag::OCTET_STRING, context_name);
    w.put_octets(tag::OCTET_STRING, context_engine_id);
    w.wrap(mark, tag::SEQUENCE);
}

/// Writes a v3 message around msgData that is already encoded: the ScopedPDU
/// element, or the ciphertext when `encrypted`. `usm.auth_params` is written as
/// given (zeros, when the caller will sign the message).
///
/// Returns the offset of the authentication parameters in the finished message,
/// where the caller writes the HMAC.
pub fn encode_v3_message(
    w: &mut Writer,
    msg_id: i32,
    max_size: i32,
    flags: u8,
    usm: &UsmParams<'_>,
    data: &[u8],
    encrypted: bool,
) -> usize {
    w.clear();
    if encrypted {
        w.put_octets(tag::OCTET_STRING, data);
    } else {
        w.put_bytes(data);
    }
    let sec_mark = w.mark();
    let seq_mark = w.mark();
    w.put_octets(tag::OCTET_STRING, usm.priv_params);
    let auth_end = w.len();
    w.put_bytes(usm.auth_params);
    let auth_start = w.len();
    w.put_header(tag::OCTET_STRING, usm.auth_params.len());
    w.put_octets(tag::OCTET_STRING, usm.user_name);
    w.put_integer(tag::INTEGER, usm.engine_time as i64);
    w.put_integer(tag::INTEGER, usm.engine_boots as i64);
    w.put_octets(tag::OCTET_STRING, usm.engine_id);
    w.wrap(seq_mark, tag::SEQUENCE);
    w.wrap(sec_mark, tag::OCTET_STRING);
    let global_mark = w.mark();
    w.put_integer(tag::INTEGER, 3);
    w.put_octets(tag::OCTET_STRING, &[flags]);
    w.put_integer(tag::INTEGER, max_size as i64);
    w.put_integer(tag::INTEGER, msg_id as i64);
    w.wrap(global_mark, tag::SEQUENCE);
    w.put_integer(tag::INTEGER, 3);
    w.wrap(0, tag::SEQUENCE);
    debug_assert!(auth_start >= auth_end);
    w.len() - auth_start
}

/// Reads just enough of a datagram to route it to the request that waits for
/// it: the request-id for v1/v2c, the msgID for v3.
pub fn peek_request_id(buf: &[u8]) -> Option<i32> {
    let mut outer = Reader::new(buf);
    let mut msg = outer.read_constructed(tag::SEQUENCE).ok()?;
    match msg.read_integer().ok()? {
        0 | 1 => {
            msg.read_octet_string().ok()?;
            let tlv = msg.read_tlv().ok()?;
            PduType::from_tag(tlv.tag)?;
            msg.sub_reader(&tlv).read_i32().ok()
        }
        3 => msg.read_constructed(tag::SEQUENCE).ok()?.read_i32().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::oid::oid;
    use crate::snmp::value::Value;

    /// A GetRequest for sysDescr.0 with community "public", as net-snmp's
    /// `snmpget -v2c -c public HOST .1.3.6.1.2.1.1.1.0` sends it (request-id 0x1234).
    const GET_SYSDESCR: [u8; 41] = [
        0x30, 0x27, // SEQUENCE, 39 bytes
        0x02, 0x01, 0x01, // version: 1 (v2c)
        0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // community
        0xa0, 0x1a, // GetRequest-PDU, 26 bytes
        0x02, 0x02, 0x12, 0x34, // request-id
        0x02, 0x01, 0x00, // error-status
        0x02, 0x01, 0x00, // error-index
        0x30, 0x0e, // varbind list
        0x30, 0x0c, // varbind
        0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, // 1.3.6.1.2.1.1.1.0
        0x05, 0x00, // NULL
    ];

    #[test]
    fn encodes_a_get_request_byte_for_byte() {
        let mut w = Writer::default();
        let oids = [oid("1.3.6.1.2.1.1.1.0")];
        encode_community_message(
            &mut w,
            Version::V2c,
            b"public",
            &PduHeader::request(PduType::GetRequest, 0x1234),
            |w| write_request_varbinds(w, &oids),
        );
        assert_eq!(w.as_slice(), &GET_SYSDESCR[..]);
        assert_eq!(peek_request_id(w.as_slice()), Some(0x1234));
    }

    #[test]
    fn decodes_a_get_request() {
        let Message::Community {
            version,
            community,
            pdu,
        } = decode_message(&GET_SYSDESCR).unwrap()
        else {
            panic!("not a community message");
        };
        assert_eq!(version, Version::V2c);
        assert_eq!(community, b"public");
        assert_eq!(pdu.header.pdu_type, PduType::GetRequest);
        assert_eq!(pdu.header.request_id, 0x1234);
        assert_eq!(
            pdu.varbinds,
            vec![VarBind::new(oid("1.3.6.1.2.1.1.1.0"), Value::Null)]
        );
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error() {
        for n in 0..GET_SYSDESCR.len() {
            assert!(decode_message(&GET_SYSDESCR[..n]).is_err(), "prefix {n}");
        }
        let mut longer = GET_SYSDESCR.to_vec();
        longer.push(0);
        assert!(decode_message(&longer).is_err());
    }
}
