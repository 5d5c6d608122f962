//! Object identifiers.
//!
//! An [`Oid`] keeps its arcs inline up to 16 of them, which covers the interface
//! and system OIDs a poller reads most, so decoding a varbind usually allocates
//! nothing for its name. Ordering is arc by arc, which is the order SNMP agents
//! walk in (a prefix sorts before its children).

use std::fmt;
use std::str::FromStr;

use smallvec::SmallVec;

use super::ber::MAX_OID_ARCS;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Oid(SmallVec<[u32; 16]>);

/// Why a textual OID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OID {text:?}: {reason}")]
pub struct ParseOidError {
    pub text: String,
    pub reason: &'static str,
}

impl Oid {
    pub fn from_slice(arcs: &[u32]) -> Oid {
        Oid(SmallVec::from_slice(arcs))
    }

    pub(crate) fn from_smallvec(arcs: SmallVec<[u32; 16]>) -> Oid {
        Oid(arcs)
    }

    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// True when `self` lies strictly below `root` in the tree.
    pub fn is_descendant_of(&self, root: &Oid) -> bool {
        self.0.len() > root.0.len() && self.starts_with(root)
    }

    /// This OID with one more arc, e.g. a column OID plus an ifIndex.
    pub fn child(&self, arc: u32) -> Oid {
        let mut arcs = self.0.clone();
        arcs.push(arc);
        Oid(arcs)
    }

    /// This OID followed by the arcs of `suffix`.
    pub fn join(&self, suffix: &[u32]) -> Oid {
        let mut arcs = self.0.clone();
        arcs.extend_from_slice(suffix);
        Oid(arcs)
    }

    /// The arcs after `prefix`, when `self` starts with it.
    pub fn suffix_after(&self, prefix: &Oid) -> Option<&[u32]> {
        self.starts_with(prefix).then(|| &self.0[prefix.0.len()..])
    }
}

impl Oid {
    /// Hands the dotted decimal form, without a leading dot, to `push` piece
    /// by piece. A walk prints an OID for every varbind, and appending
    /// straight to its line costs less than the formatting machinery.
    pub fn write_dotted(&self, mut push: impl FnMut(&str)) {
        let mut digits = itoa::Buffer::new();
        for (i, &arc) in self.0.iter().enumerate() {
            if i > 0 {
                push(".");
            }
            push(digits.format(arc));
        }
    }
}

impl fmt::Display for Oid {
    /// Dotted decimal without a leading dot, as snmprec files write OIDs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.write_dotted(|piece| {
            if result.is_ok() {
                result = f.write_str(piece);
            }
        });
        result
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl FromStr for Oid {
    type Err = ParseOidError;

    /// Accepts numeric OIDs with or without a leading dot (`.1.3.6.1` or `1.3.6.1`).
    fn from_str(text: &str) -> Result<Oid, ParseOidError> {
        let err = |reason| ParseOidError {
            text: text.to_string(),
            reason,
        };
        let body = text.strip_prefix('.').unwrap_or(text);
        if body.is_empty() {
            return Err(err("empty"));
        }
        let mut arcs = SmallVec::new();
        for part in body.split('.') {
            if part.is_empty() {
                return Err(err("empty arc"));
            }
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("only numeric OIDs are supported"));
            }
            let arc: u32 = part.parse().map_err(|_| err("arc above 4294967295"))?;
            arcs.push(arc);
        }
        if arcs.len() > MAX_OID_ARCS {
            return Err(err("more than 128 arcs"));
        }
        if arcs[0] > 2 {
            return Err(err("first arc must be 0, 1 or 2"));
        }
        if arcs.len() > 1 && arcs[0] < 2 && arcs[1] > 39 {
            return Err(err("second arc must be below 40 under 0 and 1"));
        }
        Ok(Oid(arcs))
    }
}

impl serde::Serialize for Oid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Oid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Oid, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Builds an [`Oid`] from a literal, for OIDs fixed in the code.
///
/// Panics on a malformed literal, which is a bug caught by the first test that
/// touches it.
pub fn oid(text: &str) -> Oid {
    match text.parse() {
        Ok(oid) => oid,
        Err(e) => panic!("bad OID literal: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_numeric_oids() {
        let o: Oid = ".1.3.6.1.2.1.1.1.0".parse().unwrap();
        assert_eq!(o.to_string(), "1.3.6.1.2.1.1.1.0");
        assert_eq!(o, "1.3.6.1.2.1.1.1.0".parse().unwrap());
    }

    #[test]
    fn refuses_what_cannot_be_encoded() {
        for bad in ["", ".", "1..2", "1.3.x", "3.1", "1.40", "1.3.4294967296"] {
            assert!(bad.parse::<Oid>().is_err(), "{bad} should be refused");
        }
        let long = vec!["1"; 129].join(".");
        assert!(long.parse::<Oid>().is_err());
    }

    #[test]
    fn orders_like_an_agent_walks() {
        let a = oid("1.3.6.1.2.1.2");
        let b = oid("1.3.6.1.2.1.2.1");
        let c = oid("1.3.6.1.2.1.10");
        assert!(a < b && b < c);
        assert!(b.is_descendant_of(&a));
        assert!(!a.is_descendant_of(&a));
    }
}
