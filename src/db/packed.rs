//! A row of column values as a poll hands it to the database writer,
//! packed into one allocation.
//!
//! A poll's rows wait in memory until the writer has committed them, and
//! while the database is behind, every poll in flight waits with its rows:
//! their size is what the poller's memory follows. As a list of (column
//! name, value) pairs, a port's `ports` and `ports_statistics` row took
//! about 3 KB, 48 bytes a column for values that are mostly 8-byte
//! counters. Packed, a column is its name's number (2 bytes), a tag byte and
//! the value's bytes.
//!
//! Layout: the column count (u16), each column's name number (u16), then
//! each value as a tag byte and its payload (8 bytes for a number, a u32
//! length and the bytes for text). Little-endian throughout.

use std::cell::RefCell;
use std::fmt;
use std::sync::LazyLock;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::Val;

/// A row's columns, in the order given, and their values.
#[derive(Clone, PartialEq)]
pub struct PackedRow(Box<[u8]>);

const NULL: u8 = 0;
const NOW: u8 = 1;
const INT: u8 = 2;
const UINT: u8 = 3;
const FLOAT: u8 = 4;
const TEXT: u8 = 5;
const BYTES: u8 = 6;

impl PackedRow {
    /// Packs columns and their values, in this order.
    pub fn pack(cols: impl IntoIterator<Item = (&'static str, Val)>) -> PackedRow {
        thread_local! {
            // The row is built here, then copied to an allocation of its
            // exact size: one allocation per row.
            static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = RefCell::default();
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                let (shape, values) = &mut *scratch;
                Self::pack_into(cols, shape, values)
            }
            // Packed while packing (a value computed from another row):
            // buffers of its own.
            Err(_) => Self::pack_into(cols, &mut Vec::new(), &mut Vec::new()),
        })
    }

    fn pack_into(
        cols: impl IntoIterator<Item = (&'static str, Val)>,
        shape: &mut Vec<u8>,
        values: &mut Vec<u8>,
    ) -> PackedRow {
        shape.clear();
        values.clear();
        shape.extend_from_slice(&[0, 0]);
        let mut n: u16 = 0;
        for (name, value) in cols {
            n = n
                .checked_add(1)
                .expect("a row has fewer than 65,536 columns");
            shape.extend_from_slice(&column_number(name).to_le_bytes());
            encode(&value, values);
        }
        shape[..2].copy_from_slice(&n.to_le_bytes());
        let mut row = Vec::with_capacity(shape.len() + values.len());
        row.extend_from_slice(shape);
        row.extend_from_slice(values);
        PackedRow(row.into_boxed_slice())
    }

    pub fn len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.0[0], self.0[1]]))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row's columns as bytes: rows with equal shapes have the same
    /// columns in the same order (the writer groups them by it).
    pub fn shape(&self) -> &[u8] {
        &self.0[..2 + 2 * self.len()]
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        let names = NAMES.read();
        self.shape()[2..]
            .chunks_exact(2)
            .map(|b| names.names[usize::from(u16::from_le_bytes([b[0], b[1]]))])
            .collect()
    }

    /// The values, in column order.
    pub fn values(&self) -> Values<'_> {
        Values {
            rest: &self.0[self.shape().len()..],
        }
    }

    /// The columns and their values, in order.
    pub fn cols(&self) -> Vec<(&'static str, Val)> {
        self.names().into_iter().zip(self.values()).collect()
    }

    /// The value of one column (the last one of that name).
    pub fn get(&self, column: &str) -> Option<Val> {
        self.cols()
            .into_iter()
            .rev()
            .find(|(name, _)| *name == column)
            .map(|(_, v)| v)
    }

    /// Memory this row takes, heap included (for the writer's bound).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<PackedRow>() + self.0.len()
    }
}

impl From<Vec<(&'static str, Val)>> for PackedRow {
    fn from(cols: Vec<(&'static str, Val)>) -> PackedRow {
        PackedRow::pack(cols)
    }
}

impl fmt::Debug for PackedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.cols()).finish()
    }
}

fn encode(v: &Val, out: &mut Vec<u8>) {
    match v {
        Val::Null => out.push(NULL),
        Val::Now => out.push(NOW),
        Val::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Val::UInt(u) => {
            out.push(UINT);
            out.extend_from_slice(&u.to_le_bytes());
        }
        Val::Float(x) => {
            out.push(FLOAT);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Val::Text(s) => {
            out.push(TEXT);
            encode_bytes(s.as_bytes(), out);
        }
        Val::Bytes(b) => {
            out.push(BYTES);
            encode_bytes(b, out);
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(b.len()).expect("a column value is under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

/// The values of a [`PackedRow`], decoded one at a time.
pub struct Values<'a> {
    rest: &'a [u8],
}

impl Values<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        head
    }

    fn word(&mut self) -> [u8; 8] {
        self.take(8).try_into().expect("8 bytes")
    }

    fn sized(&mut self) -> &[u8] {
        let len = u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"));
        self.take(len as usize)
    }
}

impl Iterator for Values<'_> {
    type Item = Val;

    fn next(&mut self) -> Option<Val> {
        let (&tag, rest) = self.rest.split_first()?;
        self.rest = rest;
        // The bytes were written by `encode` in this process: a tag it
        // does not write cannot occur.
        Some(match tag {
            NULL => Val::Null,
            NOW => Val::Now,
            INT => Val::Int(i64::from_le_bytes(self.word())),
            UINT => Val::UInt(u64::from_le_bytes(self.word())),
            FLOAT => Val::Float(f64::from_bits(u64::from_le_bytes(self.word()))),
            TEXT => Val::Text(String::from_utf8_lossy(self.sized()).into_owned()),
            BYTES => Val::Bytes(self.sized().to_vec()),
            other => unreachable!("packed value tag {other}"),
        })
    }
}

/// Column names by number. The names are the program's own (`&'static`
/// literals and the generated schema), so the table stays as small as the
/// set of columns ironpoll writes.
struct Names {
    numbers: FxHashMap<&'static str, u16>,
    names: Vec<&'static str>,
}

static NAMES: LazyLock<RwLock<Names>> = LazyLock::new(|| {
    RwLock::new(Names {
        numbers: FxHashMap::default(),
        names: Vec::new(),
    })
});

/// A column name's number. Each thread remembers the numbers of the
/// literals it has packed, by address, so that packing a row's columns
/// takes no lock (the ports module packs tens of thousands a poll).
fn column_number(name: &'static str) -> u16 {
    thread_local! {
        static SEEN: RefCell<FxHashMap<(usize, usize), u16>> = RefCell::default();
    }
    let at = (name.as_ptr() as usize, name.len());
    if let Some(n) = SEEN.with_borrow(|seen| seen.get(&at).copied()) {
        return n;
    }
    let n = shared_column_number(name);
    SEEN.with_borrow_mut(|seen| seen.insert(at, n));
    n
}

fn shared_column_number(name: &'static str) -> u16 {
    if let Some(&n) = NAMES.read().numbers.get(name) {
        return n;
    }
    let mut names = NAMES.write();
    if let Some(&n) = names.numbers.get(name) {
        return n;
    }
    let n = u16::try_from(names.names.len()).expect("fewer than 65,536 column names");
    names.names.push(name);
    names.numbers.insert(name, n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_comes_back_as_it_went_in() {
        let cols = vec![
            ("device_id", Val::Int(-7)),
            ("ifInOctets", Val::UInt(u64::MAX)),
            ("ifInOctets_rate", Val::Float(12.5)),
            ("ifAlias", Val::text("uplink to core — ü")),
            ("ifPhysAddress", Val::text("")),
            ("reference", Val::Null),
            ("datetime", Val::Now),
            ("blob", Val::Bytes(vec![0, 255, 1])),
        ];
        let row = PackedRow::pack(cols.clone());
        assert_eq!(row.len(), 8);
        assert_eq!(row.cols(), cols);
        assert_eq!(row.get("ifAlias"), Some(Val::text("uplink to core — ü")));
        assert_eq!(row.get("missing"), None);
        assert!(PackedRow::pack(Vec::new()).is_empty());
    }

    #[test]
    fn rows_with_the_same_columns_share_a_shape_whatever_their_values() {
        let a = PackedRow::pack([("port_id", Val::Int(1)), ("ifAlias", Val::text("a"))]);
        let b = PackedRow::pack([("port_id", Val::Int(2)), ("ifAlias", Val::Null)]);
        let swapped = PackedRow::pack([("ifAlias", Val::text("a")), ("port_id", Val::Int(1))]);
        assert_eq!(a.shape(), b.shape());
        assert_ne!(a.shape(), swapped.shape());
        assert_ne!(a, b);
        // The same name from another literal (another module) is the same
        // column.
        let name: &'static str = String::from("port_id").leak();
        let c = PackedRow::pack([(name, Val::Int(3)), ("ifAlias", Val::Null)]);
        assert_eq!(a.shape(), c.shape());
    }

    #[test]
    fn counters_pack_into_less_than_a_quarter_of_name_value_pairs() {
        let cols: Vec<(&'static str, Val)> = (0..60)
            .map(|i| {
                (
                    ["ifInOctets", "ifOutOctets", "poll_time"][i % 3],
                    Val::UInt(i as u64),
                )
            })
            .collect();
        let pairs = cols.len() * std::mem::size_of::<(&'static str, Val)>();
        let row = PackedRow::pack(cols);
        assert!(
            row.bytes() * 4 < pairs,
            "{} bytes packed, {pairs} as pairs",
            row.bytes()
        );
    }
}
