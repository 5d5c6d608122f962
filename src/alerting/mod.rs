//! LibreNMS's alerting as it runs inside a device poll: the device's alert
//! rules evaluated once its rows are committed, opening, refreshing and
//! recovering its alerts, and its dynamic device groups brought up to date.
//! `alerts.php` (LibreNMS's own, on whichever node runs it) then sends the
//! notifications for what the rules wrote.
//!
//! - `query_builder`: a rule's or group's builder JSON as LibreNMS's SQL.
//! - `relationships`: how LibreNMS joins a table to `devices`.
//! - `macros`: LibreNMS's alert macros.

pub mod macros;
pub mod query_builder;
pub mod relationships;

pub use macros::Macros;
pub use query_builder::{BuilderError, Query, QueryBuilder};
