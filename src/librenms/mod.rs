//! What LibreNMS does that ironpoll must do the same way, written once:
//! PHP's loose value semantics (`php`), LibreNMS's number and interval
//! formatting (`format`), and its file and directory naming (`names`).
//!
//! Nothing here does IO. The poller modules, the RRD catalogue and the
//! configuration build on these so that a row ironpoll writes compares equal
//! to the row LibreNMS's PHP poller would have written.

pub mod format;
pub mod names;
pub mod number;
pub mod php;
