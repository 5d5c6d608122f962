//! Varbind values.
//!
//! The three varbind exceptions (noSuchObject, noSuchInstance, endOfMibView) are
//! values, not errors: a GET of many OIDs where one is missing still returns the
//! others, and a module decides what a missing OID means.

use std::fmt;

use smallvec::SmallVec;

use super::ber::{self, DecodeError, DecodeErrorKind, DecodeResult, Reader, Writer, tag};
use super::oid::Oid;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    Null,
    ObjectId(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    /// Gauge32, which shares its tag with Unsigned32.
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
    /// A tag this codec does not know, kept as received so one odd varbind
    /// does not cost the others.
    Other {
        tag: u8,
        bytes: Vec<u8>,
    },
}

impl Value {
    /// True for noSuchObject, noSuchInstance and endOfMibView.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    pub fn tag(&self) -> u8 {
        match self {
            Value::Integer(_) => tag::INTEGER,
            Value::OctetString(_) => tag::OCTET_STRING,
            Value::Null => tag::NULL,
            Value::ObjectId(_) => tag::OBJECT_IDENTIFIER,
            Value::IpAddress(_) => tag::IP_ADDRESS,
            Value::Counter32(_) => tag::COUNTER32,
            Value::Gauge32(_) => tag::GAUGE32,
            Value::TimeTicks(_) => tag::TIMETICKS,
            Value::Opaque(_) => tag::OPAQUE,
            Value::Counter64(_) => tag::COUNTER64,
            Value::NoSuchObject => tag::NO_SUCH_OBJECT,
            Value::NoSuchInstance => tag::NO_SUCH_INSTANCE,
            Value::EndOfMibView => tag::END_OF_MIB_VIEW,
            Value::Other { tag, .. } => *tag,
        }
    }

    /// The value as an unsigned number, for counters, gauges and non-negative integers.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Integer(v) => u64::try_from(v).ok(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(v as u64),
            Value::Counter64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Integer(v) => Some(v),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(v as i64),
            Value::Counter64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// Decodes a value element.
    pub fn decode(tlv: &ber::Tlv<'_>) -> DecodeResult<Value> {
        let c = tlv.content;
        let at = tlv.offset;
        let fixed_len = |n: usize| -> DecodeResult<()> {
            if c.len() == n {
                Ok(())
            } else {
                Err(DecodeError {
                    kind: DecodeErrorKind::BadValueLength,
                    offset: at,
                })
            }
        };
        Ok(match tlv.tag {
            tag::INTEGER => Value::Integer(ber::decode_i64(c, at)?),
            tag::OCTET_STRING => Value::OctetString(c.to_vec()),
            tag::NULL => {
                fixed_len(0)?;
                Value::Null
            }
            tag::OBJECT_IDENTIFIER => {
                let mut arcs = SmallVec::new();
                ber::decode_oid_into(c, at, &mut arcs)?;
                Value::ObjectId(Oid::from_smallvec(arcs))
            }
            tag::IP_ADDRESS => {
                fixed_len(4)?;
                Value::IpAddress([c[0], c[1], c[2], c[3]])
            }
            tag::COUNTER32 => Value::Counter32(ber::decode_u32(c, at)?),
            tag::GAUGE32 => Value::Gauge32(ber::decode_u32(c, at)?),
            tag::TIMETICKS => Value::TimeTicks(ber::decode_u32(c, at)?),
            tag::OPAQUE => Value::Opaque(c.to_vec()),
            tag::COUNTER64 => Value::Counter64(ber::decode_u64(c, at)?),
            tag::NO_SUCH_OBJECT => Value::NoSuchObject,
            tag::NO_SUCH_INSTANCE => Value::NoSuchInstance,
            tag::END_OF_MIB_VIEW => Value::EndOfMibView,
            other => Value::Other {
                tag: other,
                bytes: c.to_vec(),
            },
        })
    }

    /// Writes the value element (backwards, see [`Writer`]).
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Value::Integer(v) => w.put_integer(tag::INTEGER, *v),
            Value::OctetString(b) => w.put_octets(tag::OCTET_STRING, b),
            Value::Null => w.put_empty(tag::NULL),
            Value::ObjectId(o) => w.put_oid(o.arcs()),
            Value::IpAddress(a) => w.put_octets(tag::IP_ADDRESS, a),
            Value::Counter32(v) => w.put_unsigned(tag::COUNTER32, *v as u64),
            Value::Gauge32(v) => w.put_unsigned(tag::GAUGE32, *v as u64),
            Value::TimeTicks(v) => w.put_unsigned(tag::TIMETICKS, *v as u64),
            Value::Opaque(b) => w.put_octets(tag::OPAQUE, b),
            Value::Counter64(v) => w.put_unsigned(tag::COUNTER64, *v),
            Value::NoSuchObject => w.put_empty(tag::NO_SUCH_OBJECT),
            Value::NoSuchInstance => w.put_empty(tag::NO_SUCH_INSTANCE),
            Value::EndOfMibView => w.put_empty(tag::END_OF_MIB_VIEW),
            Value::Other { tag, bytes } => w.put_octets(*tag, bytes),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::OctetString(b) => write!(f, "OctetString({:?})", String::from_utf8_lossy(b)),
            Value::Null => write!(f, "Null"),
            Value::ObjectId(o) => write!(f, "ObjectId({o})"),
            Value::IpAddress(a) => write!(f, "IpAddress({}.{}.{}.{})", a[0], a[1], a[2], a[3]),
            Value::Counter32(v) => write!(f, "Counter32({v})"),
            Value::Gauge32(v) => write!(f, "Gauge32({v})"),
            Value::TimeTicks(v) => write!(f, "TimeTicks({v})"),
            Value::Opaque(b) => write!(f, "Opaque({b:02x?})"),
            Value::Counter64(v) => write!(f, "Counter64({v})"),
            Value::NoSuchObject => write!(f, "NoSuchObject"),
            Value::NoSuchInstance => write!(f, "NoSuchInstance"),
            Value::EndOfMibView => write!(f, "EndOfMibView"),
            Value::Other { tag, bytes } => write!(f, "Other(0x{tag:02x}, {bytes:02x?})"),
        }
    }
}

/// One name/value pair of a PDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarBind {
    pub oid: Oid,
    pub value: Value,
}

impl VarBind {
    pub fn new(oid: Oid, value: Value) -> VarBind {
        VarBind { oid, value }
    }

    /// Decodes one `SEQUENCE { name, value }`.
    pub fn decode(r: &mut Reader<'_>) -> DecodeResult<VarBind> {
        let mut seq = r.read_constructed(tag::SEQUENCE)?;
        let name = seq.read_expect(tag::OBJECT_IDENTIFIER)?;
        let mut arcs = SmallVec::new();
        ber::decode_oid_into(name.content, name.offset, &mut arcs)?;
        let value = Value::decode(&seq.read_tlv()?)?;
        seq.expect_end()?;
        Ok(VarBind {
            oid: Oid::from_smallvec(arcs),
            value,
        })
    }

    pub fn encode(&self, w: &mut Writer) {
        let mark = w.mark();
        self.value.encode(w);
        w.put_oid(self.oid.arcs());
        w.wrap(mark, tag::SEQUENCE);
    }
}
