//! Tables as LibreNMS's SNMP helpers hand them to its modules: rows by
//! index, columns by name, values as net-snmp's text after LibreNMS's
//! clean-up (`snmpwalk_cache_oid`, `snmp_get_multi`).

use rustc_hash::FxHashMap;

use crate::mib::{self, Column, Table};
use crate::snmp::{self, Oid, VarBind};

use super::SnmpSource;

/// One row: values by column name. A row has a few dozen columns at most,
/// so finding one by a scan costs less than hashing it, and its values
/// share one buffer: a chassis's walked ports are thousands of rows, held
/// for the rest of its poll, and a map and an allocation per value made
/// them the largest thing a poll in flight held.
#[derive(Debug, Clone, Default)]
pub struct Row {
    cells: Vec<Cell>,
    text: String,
}

/// A column's value: its place in the row's buffer.
#[derive(Debug, Clone, Copy)]
struct Cell {
    column: &'static str,
    start: u32,
    end: u32,
}

impl Row {
    fn find(&self, column: &str) -> Option<usize> {
        self.cells.iter().position(|c| c.column == column)
    }

    fn text_of(&self, cell: &Cell) -> &str {
        &self.text[cell.start as usize..cell.end as usize]
    }

    pub fn get(&self, column: &str) -> Option<&str> {
        self.find(column).map(|at| self.text_of(&self.cells[at]))
    }

    pub fn contains_key(&self, column: &str) -> bool {
        self.find(column).is_some()
    }

    /// Sets a column's value. A value set again leaves its old text in the
    /// buffer (set twice only when walks overlap, which is rare).
    pub fn insert(&mut self, column: &'static str, value: &str) {
        let at = self.find(column);
        if at.is_some_and(|at| self.text_of(&self.cells[at]) == value) {
            return;
        }
        let start = self.text.len();
        // Offsets are 32-bit: a row of more than 4 GiB of text cannot come
        // from SNMP, whose messages are at most 64 KiB.
        let (Ok(start32), Ok(end32)) = (u32::try_from(start), u32::try_from(start + value.len()))
        else {
            return;
        };
        self.text.push_str(value);
        let cell = Cell {
            column,
            start: start32,
            end: end32,
        };
        match at {
            Some(at) => self.cells[at] = cell,
            None => self.cells.push(cell),
        }
    }

    /// Removes a column (PHP's `unset`), returning its value.
    pub fn remove(&mut self, column: &str) -> Option<String> {
        let at = self.find(column)?;
        let value = self.text_of(&self.cells[at]).to_string();
        self.cells.remove(at);
        Some(value)
    }

    /// Columns and values, in the order columns were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.cells.iter().map(|c| (c.column, self.text_of(c)))
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Sets every column of `other` (later values win, as in PHP's array).
    pub fn extend_from(&mut self, other: &Row) {
        if self.is_empty() {
            self.clone_from(other);
            return;
        }
        for (column, value) in other.iter() {
            self.insert(column, value);
        }
    }
}

/// Rows are equal when they hold the same columns with the same values,
/// whatever their order (as PHP's `==` on arrays).
impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.len() == other.len() && self.iter().all(|(c, v)| other.get(c) == Some(v))
    }
}

impl serde::Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Rows by index, in the order indexes were first seen. A row is found
/// with one hash lookup (its position), which matters: every varbind of
/// every walk lands here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    order: Vec<String>,
    position: FxHashMap<String, usize>,
    rows: Vec<Row>,
}

impl Rows {
    pub fn row_mut(&mut self, index: &str) -> &mut Row {
        let at = match self.position.get(index) {
            Some(&at) => at,
            None => {
                let at = self.rows.len();
                self.order.push(index.to_string());
                self.position.insert(index.to_string(), at);
                self.rows.push(Row::default());
                at
            }
        };
        &mut self.rows[at]
    }

    pub fn get(&self, index: &str) -> Option<&Row> {
        self.position.get(index).map(|&at| &self.rows[at])
    }

    pub fn get_mut(&mut self, index: &str) -> Option<&mut Row> {
        self.position.get(index).map(|&at| &mut self.rows[at])
    }

    /// Indexes in first-seen order.
    pub fn indexes(&self) -> &[String] {
        &self.order
    }

    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn set(&mut self, index: &str, column: &'static str, value: impl AsRef<str>) {
        self.row_mut(index).insert(column, value.as_ref());
    }

    /// Takes the row at `index` out, leaving it empty.
    pub fn take(&mut self, index: &str) -> Option<Row> {
        self.get_mut(index).map(std::mem::take)
    }
}

/// LibreNMS's clean-up of walk output: every double quote removed, the
/// text `End of MIB` removed, then quotes, spaces, backslashes and line
/// ends trimmed from both ends.
pub fn clean_walk_value(text: &str) -> std::borrow::Cow<'_, str> {
    let trim = |c: char| matches!(c, '"' | ' ' | '\\' | '\n' | '\r');
    // Most values need at most a trim: no copy.
    if !text.contains('"') && !text.contains("End of MIB") {
        return std::borrow::Cow::Borrowed(text.trim_matches(trim));
    }
    let without = text.replace('"', "").replace("End of MIB", "");
    std::borrow::Cow::Owned(without.trim_matches(trim).to_string())
}

/// LibreNMS's clean-up of GET output: quotes, spaces and line ends trimmed.
pub fn clean_get_value(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, '"' | ' ' | '\n' | '\r'))
}

/// Walk output LibreNMS throws away whole: any line reading "No Such
/// Object" or "No Such Instance".
fn discards_walk(text: &str) -> bool {
    // Called for every varbind of every walk: no allocation.
    let contains = |needle: &str| {
        text.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    contains("no such object") || contains("no such instance")
}

/// One walk of `table`, rendered as its varbinds arrive. LibreNMS throws
/// a walk away whole when any line reads "No Such Object" or "No Such
/// Instance", so the walk fills rows of its own, merged once it is known
/// to be kept.
struct TableWalk<'t> {
    table: &'t Table,
    numeric_timeticks: bool,
    rows: Rows,
    discarded: bool,
}

impl<'t> TableWalk<'t> {
    fn new(table: &'t Table, numeric_timeticks: bool) -> TableWalk<'t> {
        TableWalk {
            table,
            numeric_timeticks,
            rows: Rows::default(),
            discarded: false,
        }
    }

    fn take(&mut self, vb: VarBind) {
        if self.discarded {
            return;
        }
        let Some((column, index)) = self.table.locate(&vb.oid) else {
            return;
        };
        let Some(text) = mib::render(&vb.value, column.syntax, self.numeric_timeticks) else {
            return;
        };
        if discards_walk(&text) {
            self.discarded = true;
            self.rows = Rows::default();
            return;
        }
        self.rows
            .set(&index, column.name, &*clean_walk_value(&text));
    }

    /// The rows walked (None when LibreNMS would discard the walk), and
    /// the error that ended it early: a walk that fails part-way keeps
    /// what it received, as LibreNMS parses whatever net-snmp printed.
    async fn run(
        mut self,
        src: &dyn SnmpSource,
        root: &Oid,
    ) -> (Option<Rows>, Option<snmp::Error>) {
        let result = src.walk_each(root, &mut |vb| self.take(vb)).await;
        ((!self.discarded).then_some(self.rows), result.err())
    }
}

impl Rows {
    /// Writes `other`'s values over ours, its new indexes after ours
    /// (PHP's `->table(1, $port_stats)` into an existing array).
    pub fn overwrite(&mut self, other: &Rows) {
        for index in other.indexes() {
            if let Some(cells) = other.get(index) {
                self.row_mut(index).extend_from(cells);
            }
        }
    }

    /// Adds `other`'s values, its new indexes after ours.
    fn merge(&mut self, other: Rows) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let Rows { order, rows, .. } = other;
        for (index, cells) in order.iter().zip(rows) {
            self.row_mut(index).extend_from(&cells);
        }
    }
}

/// Walks a whole table entry (`ifXEntry`) into `rows`; a walk that failed
/// part-way merges what it received and returns its error.
pub async fn walk_table(
    src: &dyn SnmpSource,
    table: &Table,
    numeric_timeticks: bool,
    rows: &mut Rows,
) -> Option<snmp::Error> {
    let (walked, error) = TableWalk::new(table, numeric_timeticks)
        .run(src, &table.entry_oid())
        .await;
    if let Some(walked) = walked {
        rows.merge(walked);
    }
    error
}

/// Walks single columns of a table into `rows`, as LibreNMS walks them one
/// after the other; the walks run concurrently (the agent's in-flight limit
/// still applies), the results merge in column order.
pub async fn walk_columns(
    src: &dyn SnmpSource,
    table: &Table,
    columns: &[&str],
    numeric_timeticks: bool,
    rows: &mut Rows,
) -> Vec<snmp::Error> {
    let oids: Vec<Oid> = columns
        .iter()
        .filter_map(|c| table.column(c).map(|col| table.column_oid(col)))
        .collect();
    let results = futures_util::future::join_all(
        oids.iter()
            .map(|o| TableWalk::new(table, numeric_timeticks).run(src, o)),
    )
    .await;
    let mut errors = Vec::new();
    for (walked, error) in results {
        if let Some(walked) = walked {
            rows.merge(walked);
        }
        errors.extend(error);
    }
    errors
}

/// GETs `columns` of the rows at `index` (LibreNMS's `snmp_get_multi`).
pub async fn get_columns(
    src: &dyn SnmpSource,
    table: &Table,
    columns: &[&str],
    index: &str,
    rows: &mut Rows,
) -> Result<(), snmp::Error> {
    let wanted: Vec<(&'static Column, Oid)> = columns
        .iter()
        .filter_map(|c| {
            let col = table.column(c)?;
            let oid: Oid = format!("{}.{index}", table.column_oid(col)).parse().ok()?;
            Some((col, oid))
        })
        .collect();
    let oids: Vec<Oid> = wanted.iter().map(|(_, o)| o.clone()).collect();
    let varbinds = src.get(&oids).await?;
    for ((col, _), vb) in wanted.iter().zip(&varbinds) {
        if let Some(text) = mib::render(&vb.value, col.syntax, true) {
            rows.set(index, col.name, clean_get_value(&text));
        }
    }
    Ok(())
}

/// A walk below one of a `mibs/` file's objects (a table entry or a group
/// of scalars): values by index and column name, as net-snmp prints them
/// (numeric timeticks and enums) after LibreNMS's clean-up. A walk that
/// fails part-way keeps what it received, as LibreNMS parses whatever
/// net-snmp printed; the error comes with it.
pub async fn walk_data(
    src: &dyn SnmpSource,
    data: &'static crate::mib::data::MibData,
    root: &str,
) -> (Rows, Option<snmp::Error>) {
    let root_oid = data.oid(root).clone();
    let depth = root_oid.arcs().len() + 1;
    let mut rows = Rows::default();
    let mut take = |vb: VarBind| {
        let arcs = vb.oid.arcs();
        if arcs.len() <= depth {
            return;
        }
        let Some(column) = data.name_of(&Oid::from_slice(&arcs[..depth])) else {
            return;
        };
        let Some(text) = mib::render(&vb.value, mib::Syntax::OctetString, true) else {
            return;
        };
        let index = mib::dotted(&arcs[depth..]);
        rows.set(&index, column, &*clean_walk_value(&text));
    };
    let result = src.walk_each(&root_oid, &mut take).await;
    (rows, result.err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mib::IF_X_ENTRY;
    use crate::modules::RecordingSource;
    use crate::snmp::Value;

    #[test]
    fn walk_values_are_cleaned_like_librenms() {
        assert_eq!(
            clean_walk_value("  \"Uplink \\\"core\\\"\"  "),
            // net-snmp escapes inner quotes; LibreNMS drops the quotes and
            // keeps the inner backslash.
            "Uplink \\core"
        );
        assert_eq!(clean_walk_value("eth0\n"), "eth0");
        assert_eq!(clean_walk_value("End of MIB port"), "port");
        assert_eq!(clean_walk_value("plain"), "plain");
        assert_eq!(clean_get_value("\"x\\\" "), "x\\");
    }

    #[test]
    fn a_row_reads_like_php_s_array() {
        let mut row = Row::default();
        row.insert("ifDescr", "eth0");
        row.insert("ifAlias", "uplink");
        row.insert("ifDescr", "eth0.1");
        assert_eq!(row.get("ifDescr"), Some("eth0.1"), "later values win");
        assert_eq!(row.len(), 2);
        assert!(row.contains_key("ifAlias"));
        assert_eq!(row.get("ifName"), None);
        assert_eq!(row.remove("ifAlias"), Some("uplink".to_string()));
        assert!(!row.contains_key("ifAlias"));
        assert_eq!(row.remove("ifAlias"), None);
        assert_eq!(row.iter().collect::<Vec<_>>(), [("ifDescr", "eth0.1")]);

        let mut other = Row::default();
        other.insert("ifName", "");
        other.insert("ifDescr", "eth0.1");
        let mut merged = row.clone();
        merged.extend_from(&other);
        assert_eq!(merged.get("ifName"), Some(""), "an empty value is set");
        // Equal whatever the order the columns were set in.
        let mut reordered = Row::default();
        reordered.insert("ifName", "");
        reordered.insert("ifDescr", "eth0.1");
        assert_eq!(merged, reordered);
        reordered.insert("ifName", "x");
        assert_ne!(merged, reordered);
        assert_eq!(
            serde_json::to_value(&merged).unwrap(),
            serde_json::json!({"ifDescr": "eth0.1", "ifName": ""})
        );
    }

    #[tokio::test]
    async fn a_walk_with_a_no_such_object_text_is_discarded() {
        let vb = |o: &str, s: &str| {
            VarBind::new(
                o.parse().unwrap(),
                Value::OctetString(s.as_bytes().to_vec()),
            )
        };
        let src = RecordingSource::new(vec![
            vb("1.3.6.1.2.1.31.1.1.1.1.1", "eth0"),
            vb("1.3.6.1.2.1.31.1.1.1.18.1", "No Such Object available"),
        ]);
        let mut rows = Rows::default();
        assert!(
            walk_table(&src, &IF_X_ENTRY, false, &mut rows)
                .await
                .is_none()
        );
        assert!(rows.is_empty());
        let src = RecordingSource::new(vec![
            vb("1.3.6.1.2.1.31.1.1.1.1.2", "eth1"),
            vb("1.3.6.1.2.1.31.1.1.1.1.1", "eth0"),
            vb("1.3.6.1.2.1.31.1.1.1.18.1", "uplink"),
        ]);
        assert!(
            walk_table(&src, &IF_X_ENTRY, false, &mut rows)
                .await
                .is_none()
        );
        assert_eq!(rows.indexes(), ["1", "2"]);
        assert_eq!(rows.get("1").unwrap().get("ifAlias"), Some("uplink"));
    }
}
