//! What a poll writes, as changes to tables: the writer turns them into
//! statements without knowing any table. A module says "update these
//! columns of the `sensors` row with this key", "insert this `eventlog`
//! row"; the writer groups alike changes of many polls into multi-row
//! statements.

use super::Val;
use super::packed::PackedRow;

/// Column names and their new values.
pub type Cols = Vec<(&'static str, Val)>;

/// One row's new values, by its key column's value (device_id, port_id...).
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate {
    pub key: u64,
    pub cols: PackedRow,
}

/// A condition on a column, for changes that are not by key.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(&'static str, Val),
    IsNull(&'static str),
    In(&'static str, Vec<Val>),
    NotIn(&'static str, Vec<Val>),
}

/// One change to one table.
#[derive(Debug, Clone, PartialEq)]
pub enum TableChange {
    /// `UPDATE table SET cols WHERE key = row.key`.
    Update {
        table: &'static str,
        key: &'static str,
        row: RowUpdate,
    },
    /// `UPDATE table SET cols WHERE filters` (many rows, the same values).
    UpdateWhere {
        table: &'static str,
        set: Cols,
        filters: Vec<Filter>,
    },
    /// `INSERT INTO table (cols) VALUES (...)`.
    Insert { table: &'static str, row: PackedRow },
    /// An INSERT that updates the row when the `keys` collide. A
    /// `created_at` column keeps the value it was made with.
    Upsert {
        table: &'static str,
        keys: &'static [&'static str],
        row: PackedRow,
    },
    /// An INSERT unless a row matching `exists` is there already.
    InsertUnless {
        table: &'static str,
        row: Cols,
        exists: Vec<Filter>,
    },
    /// `DELETE FROM table WHERE filters`.
    Delete {
        table: &'static str,
        filters: Vec<Filter>,
    },
}

impl TableChange {
    /// Rows this change writes, for the writer's bound.
    pub fn rows(&self) -> usize {
        match self {
            TableChange::UpdateWhere { filters, .. } => filters
                .iter()
                .find_map(|f| match f {
                    Filter::In(_, ids) => Some(ids.len()),
                    _ => None,
                })
                .unwrap_or(1),
            _ => 1,
        }
    }

    /// Memory this change takes, heap included (for the writer's bound).
    pub fn bytes(&self) -> usize {
        fn cols(c: &Cols) -> usize {
            c.iter()
                .map(|(_, v)| std::mem::size_of::<&str>() + v.bytes())
                .sum()
        }
        fn filters(f: &[Filter]) -> usize {
            f.iter()
                .map(|f| {
                    std::mem::size_of::<Filter>()
                        + match f {
                            Filter::Eq(_, v) => v.bytes(),
                            Filter::IsNull(_) => 0,
                            Filter::In(_, vs) | Filter::NotIn(_, vs) => {
                                vs.iter().map(Val::bytes).sum()
                            }
                        }
                })
                .sum()
        }
        std::mem::size_of::<TableChange>()
            + match self {
                TableChange::Update { row, .. } => row.cols.bytes(),
                TableChange::UpdateWhere {
                    set, filters: f, ..
                } => cols(set) + filters(f),
                TableChange::Insert { row, .. } | TableChange::Upsert { row, .. } => row.bytes(),
                TableChange::InsertUnless { row, exists, .. } => cols(row) + filters(exists),
                TableChange::Delete { filters: f, .. } => filters(f),
            }
    }

    pub fn table(&self) -> &'static str {
        match self {
            TableChange::Update { table, .. }
            | TableChange::UpdateWhere { table, .. }
            | TableChange::Insert { table, .. }
            | TableChange::Upsert { table, .. }
            | TableChange::InsertUnless { table, .. }
            | TableChange::Delete { table, .. } => table,
        }
    }
}

/// An eventlog row; its time is the database clock at write.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub device_id: u32,
    pub message: String,
    pub kind: String,
    pub reference: Option<String>,
    pub severity: u8,
}

impl Event {
    /// The `eventlog` row LibreNMS's `Eventlog::log` writes.
    pub fn into_change(self) -> TableChange {
        TableChange::Insert {
            table: "eventlog",
            row: PackedRow::pack([
                ("device_id", Val::from(self.device_id)),
                ("datetime", Val::Now),
                ("message", Val::Text(self.message)),
                ("type", Val::Text(self.kind)),
                ("reference", Val::opt_text(self.reference)),
                // LibreNMS logs '' when no user is logged in.
                ("username", Val::text("")),
                ("severity", Val::Int(i64::from(self.severity))),
            ]),
        }
    }
}

/// Everything one poll (or one fast-ping round) writes, in the order it
/// was recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// The device these changes are about, for logs (None for a round
    /// over many devices).
    pub device: Option<u32>,
    pub ops: Vec<TableChange>,
}

impl Changes {
    pub fn for_device(device_id: u32) -> Changes {
        Changes {
            device: Some(device_id),
            ops: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Rows these changes write (for the writer's bound).
    pub fn rows(&self) -> usize {
        self.ops.iter().map(TableChange::rows).sum()
    }

    /// Memory these changes take (for the writer's bound).
    pub fn bytes(&self) -> usize {
        self.ops.iter().map(TableChange::bytes).sum()
    }

    pub fn push(&mut self, change: TableChange) {
        self.ops.push(change);
    }

    pub fn extend(&mut self, other: Changes) {
        self.ops.extend(other.ops);
    }

    /// An UPDATE of the row of `table` whose `key` column is `id`.
    pub fn update(&mut self, table: &'static str, key: &'static str, id: u64, cols: Cols) {
        if cols.is_empty() {
            return;
        }
        self.ops.push(TableChange::Update {
            table,
            key,
            row: RowUpdate {
                key: id,
                cols: PackedRow::from(cols),
            },
        });
    }

    pub fn insert(&mut self, table: &'static str, row: Cols) {
        self.ops.push(TableChange::Insert {
            table,
            row: PackedRow::from(row),
        });
    }

    pub fn upsert(&mut self, table: &'static str, keys: &'static [&'static str], row: Cols) {
        self.ops.push(TableChange::Upsert {
            table,
            keys,
            row: PackedRow::from(row),
        });
    }

    pub fn event(&mut self, event: Event) {
        self.ops.push(event.into_change());
    }

    /// The changes to one table (tests and reports).
    pub fn of_table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a TableChange> + 'a {
        self.ops.iter().filter(move |c| c.table() == table)
    }
}
