//! SNMP: a sans-IO codec (`ber`, `oid`, `value`, `pdu`, `usm`) under an async
//! client (`transport`, `client`) that keeps thousands of requests in flight on
//! a few shared UDP sockets, a TCP connection per agent (`tcp`) for
//! agents reached over TCP, and a blocking socket of its own (`dedicated`)
//! for a process that talks to one agent.

pub mod ber;
pub mod client;
pub mod dedicated;
pub mod display;
pub mod error;
pub mod oid;
pub mod pdu;
pub mod target;
pub mod tcp;
pub mod transport;
pub mod usm;
pub mod value;

#[cfg(test)]
mod tests;

pub use client::{ClientOptions, EndOfMib, Session, SessionOptions, SnmpClient, WalkSummary};
pub use error::{Error, ErrorKind};
pub use oid::{Oid, oid};
pub use pdu::Version;
pub use target::{Credentials, Target};
pub use value::{Value, VarBind};
