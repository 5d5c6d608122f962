//! BER primitives for SNMP messages.
//!
//! [`Reader`] walks a received datagram without copying: every length is checked
//! against what is left, so a hostile packet yields a [`DecodeError`] naming the
//! byte where it went wrong, never a panic or an out-of-bounds read.
//!
//! [`Writer`] builds a message from its last byte towards its first. A BER length
//! precedes its content, and writing backwards means the content is complete when
//! its length is written, so every length comes out in its shortest form (as
//! net-snmp writes them) without moving bytes around.
//!
//! This module does no IO.

use std::fmt;

/// Universal and SNMP application tags (RFC 2578, RFC 3416).
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIMETICKS: u8 = 0x43;
    pub const OPAQUE: u8 = 0x44;
    pub const COUNTER64: u8 = 0x46;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
}

/// Longest OID the codec accepts, as in net-snmp (`MAX_OID_LEN`).
pub const MAX_OID_ARCS: usize = 128;

/// What was wrong with a received message, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// Byte offset into the datagram where decoding failed.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// A length points past the end of the enclosing element.
    Truncated,
    /// The element has another tag than the grammar requires here.
    UnexpectedTag { expected: u8, found: u8 },
    /// Indefinite or over-long length encoding.
    BadLength,
    /// An integer does not fit its type.
    IntegerOverflow,
    /// Zero-length integer.
    EmptyInteger,
    /// A sub-identifier overflows 32 bits, is unterminated, or the OID is too long.
    BadOid,
    /// A value of a fixed size (IpAddress, NULL) has another size.
    BadValueLength,
    /// Bytes left over after the outermost element.
    TrailingBytes,
    /// The message version is not 0 (v1), 1 (v2c) or 3.
    UnsupportedVersion,
    /// The PDU tag is not one SNMP defines.
    UnknownPduType,
    /// The SNMPv3 security model is not USM (3).
    UnsupportedSecurityModel,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DecodeErrorKind::Truncated => "truncated element".to_string(),
            DecodeErrorKind::UnexpectedTag { expected, found } => {
                format!("expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            DecodeErrorKind::BadLength => "unsupported length encoding".to_string(),
            DecodeErrorKind::IntegerOverflow => "integer out of range".to_string(),
            DecodeErrorKind::EmptyInteger => "empty integer".to_string(),
            DecodeErrorKind::BadOid => "malformed object identifier".to_string(),
            DecodeErrorKind::BadValueLength => "value has the wrong length".to_string(),
            DecodeErrorKind::TrailingBytes => "trailing bytes after the message".to_string(),
            DecodeErrorKind::UnsupportedVersion => "unsupported SNMP version".to_string(),
            DecodeErrorKind::UnknownPduType => "unknown PDU type".to_string(),
            DecodeErrorKind::UnsupportedSecurityModel => "security model is not USM".to_string(),
        };
        write!(f, "{what} at byte {}", self.offset)
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// One element: its tag, its content and where the content starts in the datagram.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub offset: usize,
}

/// A cursor over a region of a datagram. Copying it is cheap.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// Bytes not read yet in this reader's region.
    pub fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// Offset of the next unread byte in the whole datagram.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn peek_tag(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.buf[self.pos])
    }

    fn error(&self, kind: DecodeErrorKind, offset: usize) -> DecodeError {
        DecodeError { kind, offset }
    }

    /// Reads one element. Multi-byte tags are not used by SNMP and are rejected
    /// as unexpected by the callers that check tags.
    pub fn read_tlv(&mut self) -> DecodeResult<Tlv<'a>> {
        let start = self.pos;
        if self.pos >= self.end {
            return Err(self.error(DecodeErrorKind::Truncated, start));
        }
        let tag = self.buf[self.pos];
        let mut pos = self.pos + 1;
        if pos >= self.end {
            return Err(self.error(DecodeErrorKind::Truncated, pos));
        }
        let first = self.buf[pos];
        pos += 1;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            // 0x80 is the indefinite form, which SNMP forbids; more than four
            // length bytes cannot describe a datagram.
            if n == 0 || n > 4 {
                return Err(self.error(DecodeErrorKind::BadLength, pos - 1));
            }
            if pos + n > self.end {
                return Err(self.error(DecodeErrorKind::Truncated, pos));
            }
            let mut len = 0usize;
            for &b in &self.buf[pos..pos + n] {
                len = (len << 8) | b as usize;
            }
            pos += n;
            len
        };
        if len > self.end - pos {
            return Err(self.error(DecodeErrorKind::Truncated, pos));
        }
        self.pos = pos + len;
        Ok(Tlv {
            tag,
            content: &self.buf[pos..pos + len],
            offset: pos,
        })
    }

    /// Reads one element and checks its tag.
    pub fn read_expect(&mut self, expected: u8) -> DecodeResult<Tlv<'a>> {
        let at = self.pos;
        let tlv = self.read_tlv()?;
        if tlv.tag != expected {
            return Err(self.error(
                DecodeErrorKind::UnexpectedTag {
                    expected,
                    found: tlv.tag,
                },
                at,
            ));
        }
        Ok(tlv)
    }

    /// Reads a constructed element and returns a reader over its content.
    pub fn read_constructed(&mut self, expected: u8) -> DecodeResult<Reader<'a>> {
        let tlv = self.read_expect(expected)?;
        Ok(self.sub_reader(&tlv))
    }

    /// A reader over the content of an element this reader returned.
    pub fn sub_reader(&self, tlv: &Tlv<'a>) -> Reader<'a> {
        Reader {
            buf: self.buf,
            pos: tlv.offset,
            end: tlv.offset + tlv.content.len(),
        }
    }

    pub fn read_integer(&mut self) -> DecodeResult<i64> {
        let tlv = self.read_expect(tag::INTEGER)?;
        decode_i64(tlv.content, tlv.offset)
    }

    /// Reads an INTEGER that must fit in 32 bits (request-id, error-status, ...).
    pub fn read_i32(&mut self) -> DecodeResult<i32> {
        let at = self.pos;
        let v = self.read_integer()?;
        i32::try_from(v).map_err(|_| self.error(DecodeErrorKind::IntegerOverflow, at))
    }

    pub fn read_octet_string(&mut self) -> DecodeResult<&'a [u8]> {
        Ok(self.read_expect(tag::OCTET_STRING)?.content)
    }

    /// Fails when bytes are left in this reader's region.
    pub fn expect_end(&self) -> DecodeResult<()> {
        if self.pos < self.end {
            return Err(self.error(DecodeErrorKind::TrailingBytes, self.pos));
        }
        Ok(())
    }
}

/// Decodes a two's-complement INTEGER of at most 64 bits.
pub fn decode_i64(content: &[u8], offset: usize) -> DecodeResult<i64> {
    if content.is_empty() {
        return Err(DecodeError {
            kind: DecodeErrorKind::EmptyInteger,
            offset,
        });
    }
    // Redundant leading sign bytes are legal BER; drop them before sizing.
    let mut bytes = content;
    while bytes.len() > 1
        && ((bytes[0] == 0 && bytes[1] & 0x80 == 0) || (bytes[0] == 0xff && bytes[1] & 0x80 != 0))
    {
        bytes = &bytes[1..];
    }
    if bytes.len() > 8 {
        return Err(DecodeError {
            kind: DecodeErrorKind::IntegerOverflow,
            offset,
        });
    }
    let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in bytes {
        v = (v << 8) | b as i64;
    }
    Ok(v)
}

/// Decodes an unsigned application value (Counter64) of at most 64 bits.
pub fn decode_u64(content: &[u8], offset: usize) -> DecodeResult<u64> {
    if content.is_empty() {
        return Err(DecodeError {
            kind: DecodeErrorKind::EmptyInteger,
            offset,
        });
    }
    let mut bytes = content;
    while bytes.len() > 1 && bytes[0] == 0 {
        bytes = &bytes[1..];
    }
    if bytes.len() > 8 {
        return Err(DecodeError {
            kind: DecodeErrorKind::IntegerOverflow,
            offset,
        });
    }
    // Agents that encode a large counter without the leading zero byte would
    // read as negative under strict BER; net-snmp takes the bits as they are,
    // and so do we.
    let mut v: u64 = 0;
    for &b in bytes {
        v = (v << 8) | b as u64;
    }
    Ok(v)
}

/// Decodes an unsigned 32-bit application value (Counter32, Gauge32, TimeTicks).
///
/// A value encoded as a negative number (a known agent bug) is sign-extended
/// and cut to 32 bits, which is what net-snmp reports for it.
pub fn decode_u32(content: &[u8], offset: usize) -> DecodeResult<u32> {
    if content.is_empty() {
        return Err(DecodeError {
            kind: DecodeErrorKind::EmptyInteger,
            offset,
        });
    }
    // Drop only zero bytes that carry no sign: 00 98 96 80 is 10000000.
    let mut bytes = content;
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes = &bytes[1..];
    }
    if bytes.len() > 5 || (bytes.len() == 5 && bytes[0] != 0) {
        return Err(DecodeError {
            kind: DecodeErrorKind::IntegerOverflow,
            offset,
        });
    }
    let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in bytes {
        v = (v << 8) | b as i64;
    }
    Ok(v as u32)
}

/// Decodes the content of an OBJECT IDENTIFIER into `out`, replacing its content.
pub fn decode_oid_into(
    content: &[u8],
    offset: usize,
    out: &mut smallvec::SmallVec<[u32; 16]>,
) -> DecodeResult<()> {
    out.clear();
    let bad = DecodeError {
        kind: DecodeErrorKind::BadOid,
        offset,
    };
    if content.is_empty() {
        return Err(bad);
    }
    let mut value: u64 = 0;
    let mut first = true;
    let mut in_arc = false;
    for &b in content {
        value = (value << 7) | (b & 0x7f) as u64;
        in_arc = true;
        if value > u32::MAX as u64 + 80 {
            return Err(bad);
        }
        if b & 0x80 == 0 {
            if first {
                // The first sub-identifier packs the first two arcs as 40*X + Y;
                // X is 0, 1 or 2, and Y is unbounded only when X is 2.
                let (a, b) = match value {
                    0..=39 => (0, value),
                    40..=79 => (1, value - 40),
                    _ => (2, value - 80),
                };
                if b > u32::MAX as u64 {
                    return Err(bad);
                }
                out.push(a as u32);
                out.push(b as u32);
                first = false;
            } else {
                if value > u32::MAX as u64 {
                    return Err(bad);
                }
                if out.len() >= MAX_OID_ARCS {
                    return Err(bad);
                }
                out.push(value as u32);
            }
            value = 0;
            in_arc = false;
        }
    }
    if in_arc {
        return Err(bad);
    }
    Ok(())
}

/// Builds a message backwards into a reusable buffer.
///
/// Write the last element first: to produce `SEQUENCE { a, b }`, take a
/// [`mark`](Writer::mark), write `b`, then `a`, then [`wrap`](Writer::wrap) the
/// mark with the SEQUENCE tag.
#[derive(Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    start: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::with_capacity(1500)
    }
}

impl Writer {
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(64);
        Writer {
            buf: vec![0; capacity],
            start: capacity,
        }
    }

    /// Forgets what was written, keeping the buffer.
    pub fn clear(&mut self) {
        self.start = self.buf.len();
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes written, in wire order.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    /// The message as an owned buffer, moved to the front of the allocation.
    pub fn into_vec(mut self) -> Vec<u8> {
        let len = self.len();
        self.buf.copy_within(self.start.., 0);
        self.buf.truncate(len);
        self.buf
    }

    fn reserve(&mut self, n: usize) {
        if self.start >= n {
            return;
        }
        let used = self.len();
        let new_cap = (self.buf.len() * 2).max(used + n + 64);
        let mut grown = vec![0; new_cap];
        grown[new_cap - used..].copy_from_slice(&self.buf[self.start..]);
        self.buf = grown;
        self.start = new_cap - used;
    }

    /// A position to wrap later; it counts bytes from the end of the message.
    pub fn mark(&self) -> usize {
        self.len()
    }

    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.start -= bytes.len();
        self.buf[self.start..self.start + bytes.len()].copy_from_slice(bytes);
    }

    pub fn put_u8(&mut self, b: u8) {
        self.reserve(1);
        self.start -= 1;
        self.buf[self.start] = b;
    }

    /// Writes a tag and length for `len` bytes of content already written.
    pub fn put_header(&mut self, tag: u8, len: usize) {
        if len < 0x80 {
            self.put_u8(len as u8);
        } else {
            let mut n = 0u8;
            let mut l = len;
            while l > 0 {
                self.put_u8(l as u8);
                l >>= 8;
                n += 1;
            }
            self.put_u8(0x80 | n);
        }
        self.put_u8(tag);
    }

    /// Wraps everything written since `mark` into one element with `tag`.
    pub fn wrap(&mut self, mark: usize, tag: u8) {
        let len = self.len() - mark;
        self.put_header(tag, len);
    }

    pub fn put_octets(&mut self, tag: u8, bytes: &[u8]) {
        self.put_bytes(bytes);
        self.put_header(tag, bytes.len());
    }

    /// A signed INTEGER (or any tag with signed content) in its shortest form.
    pub fn put_integer(&mut self, tag: u8, v: i64) {
        let bytes = v.to_be_bytes();
        let mut skip = 0;
        while skip < 7 {
            let b = bytes[skip];
            let next_high = bytes[skip + 1] & 0x80;
            if (b == 0 && next_high == 0) || (b == 0xff && next_high != 0) {
                skip += 1;
            } else {
                break;
            }
        }
        self.put_octets(tag, &bytes[skip..]);
    }

    /// An unsigned value (Counter32, Gauge32, TimeTicks, Counter64) with a
    /// leading zero byte when its top bit is set, so it never reads as negative.
    pub fn put_unsigned(&mut self, tag: u8, v: u64) {
        let bytes = v.to_be_bytes();
        let mut skip = 0;
        while skip < 7 && bytes[skip] == 0 {
            skip += 1;
        }
        let body = &bytes[skip..];
        self.put_bytes(body);
        let mut len = body.len();
        if body[0] & 0x80 != 0 {
            self.put_u8(0);
            len += 1;
        }
        self.put_header(tag, len);
    }

    /// A zero-length element: NULL or one of the varbind exceptions.
    pub fn put_empty(&mut self, tag: u8) {
        self.put_u8(0);
        self.put_u8(tag);
    }

    /// OID content bytes (without tag and length).
    pub fn put_oid_content(&mut self, arcs: &[u32]) {
        // Sub-identifiers are written last first, each one low 7 bits first.
        let n = arcs.len();
        let mut i = n;
        while i > 2 {
            i -= 1;
            self.put_subidentifier(arcs[i] as u64);
        }
        // net-snmp sends a one-arc OID such as ".1" as if it were ".1.0";
        // we do the same so such a walk root still works.
        let a = arcs.first().copied().unwrap_or(0) as u64;
        let b = arcs.get(1).copied().unwrap_or(0) as u64;
        self.put_subidentifier(a * 40 + b);
    }

    fn put_subidentifier(&mut self, mut v: u64) {
        self.put_u8((v & 0x7f) as u8);
        v >>= 7;
        while v > 0 {
            self.put_u8(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
    }

    pub fn put_oid(&mut self, arcs: &[u32]) {
        let mark = self.mark();
        self.put_oid_content(arcs);
        self.wrap(mark, tag::OBJECT_IDENTIFIER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::SmallVec;

    #[test]
    fn integers_round_trip_in_shortest_form() {
        for (v, bytes) in [
            (0i64, vec![0x02, 0x01, 0x00]),
            (127, vec![0x02, 0x01, 0x7f]),
            (128, vec![0x02, 0x02, 0x00, 0x80]),
            (-1, vec![0x02, 0x01, 0xff]),
            (-129, vec![0x02, 0x02, 0xff, 0x7f]),
            (i32::MAX as i64, vec![0x02, 0x04, 0x7f, 0xff, 0xff, 0xff]),
        ] {
            let mut w = Writer::with_capacity(16);
            w.put_integer(tag::INTEGER, v);
            assert_eq!(w.as_slice(), &bytes[..], "encoding {v}");
            let mut r = Reader::new(w.as_slice());
            assert_eq!(r.read_integer().unwrap(), v);
        }
    }

    #[test]
    fn unsigned_values_get_a_leading_zero_when_the_top_bit_is_set() {
        let mut w = Writer::with_capacity(16);
        w.put_unsigned(tag::COUNTER32, 0xffff_ffff);
        assert_eq!(w.as_slice(), &[0x41, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]);
        w.clear();
        w.put_unsigned(tag::COUNTER64, u64::MAX);
        assert_eq!(
            w.as_slice(),
            &[
                0x46, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]
        );
        assert_eq!(decode_u64(&w.as_slice()[2..], 2).unwrap(), u64::MAX);
    }

    #[test]
    fn unsigned_values_with_a_high_bit_after_a_zero_byte() {
        for v in [128u32, 10_000_000, 0x8000_0000, 0xffff_ff80, 0xffff_ffff] {
            let mut w = Writer::with_capacity(16);
            w.put_unsigned(tag::GAUGE32, v as u64);
            assert_eq!(decode_u32(&w.as_slice()[2..], 2).unwrap(), v, "{v}");
        }
        assert_eq!(decode_u32(&[0x00, 0x00, 0x01], 0).unwrap(), 1);
    }

    #[test]
    fn negative_counter32_reads_as_net_snmp_reads_it() {
        assert_eq!(decode_u32(&[0xff], 0).unwrap(), 0xffff_ffff);
        assert_eq!(decode_u32(&[0x80, 0x00], 0).unwrap(), 0xffff_8000);
        assert!(decode_u32(&[0x01, 0x00, 0x00, 0x00, 0x00], 0).is_err());
    }

    #[test]
    fn long_lengths_are_minimal() {
        let mut w = Writer::with_capacity(8);
        w.put_octets(tag::OCTET_STRING, &[7u8; 300]);
        assert_eq!(&w.as_slice()[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(w.len(), 304);
    }

    #[test]
    fn oids_encode_like_net_snmp() {
        let mut w = Writer::with_capacity(8);
        w.put_oid(&[1, 3, 6, 1, 2, 1, 1, 1, 0]);
        assert_eq!(
            w.as_slice(),
            &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00]
        );
        w.clear();
        w.put_oid(&[1, 3, 6, 1, 4, 1, 2021, 4294967295]);
        let mut arcs = SmallVec::new();
        decode_oid_into(&w.as_slice()[2..], 2, &mut arcs).unwrap();
        assert_eq!(&arcs[..], &[1, 3, 6, 1, 4, 1, 2021, 4294967295]);
        w.clear();
        w.put_oid(&[1]);
        assert_eq!(w.as_slice(), &[0x06, 0x01, 0x28]);
    }

    #[test]
    fn malformed_oids_are_rejected() {
        let mut arcs = SmallVec::new();
        // Unterminated sub-identifier.
        assert!(decode_oid_into(&[0x2b, 0x86], 0, &mut arcs).is_err());
        // A sub-identifier above 2^32-1.
        assert!(decode_oid_into(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00], 0, &mut arcs).is_err());
        assert!(decode_oid_into(&[], 0, &mut arcs).is_err());
    }

    #[test]
    fn lengths_past_the_end_are_truncation_errors() {
        let mut r = Reader::new(&[0x30, 0x05, 0x02, 0x01]);
        let err = r.read_tlv().unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Truncated);
        let mut r = Reader::new(&[0x30, 0x80, 0x00, 0x00]);
        assert_eq!(r.read_tlv().unwrap_err().kind, DecodeErrorKind::BadLength);
        let mut r = Reader::new(&[0x30, 0x85, 1, 0, 0, 0, 0]);
        assert_eq!(r.read_tlv().unwrap_err().kind, DecodeErrorKind::BadLength);
    }
}
