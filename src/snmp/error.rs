//! Errors of the SNMP client. Every message names the agent (host and port)
//! and never the community or a v3 key.

use super::ber::DecodeError;
use super::oid::Oid;
use super::pdu::ErrorStatus;
use super::target::TargetError;
use super::usm::{UserError, UsmError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No acceptable reply after all retries; net-snmp's wording.
    #[error("Timeout: No Response from {agent}")]
    Timeout { agent: String },
    /// Replies came but every one was unusable; the last reason is kept.
    #[error("no usable response from {agent}: {reason}")]
    BadResponse { agent: String, reason: String },
    #[error("cannot send to {agent}: {reason}")]
    Send { agent: String, reason: String },
    /// No reply, and the agent's TCP connection could not be kept: refused,
    /// reset, closed, or a stream that was not SNMP.
    #[error("no TCP connection to {agent}: {reason}")]
    Connection { agent: String, reason: String },
    #[error("{agent} answered with error-status {status} at index {index}{}", failed_oid(.oid))]
    ErrorStatus {
        agent: String,
        status: ErrorStatus,
        index: u32,
        oid: Option<Box<Oid>>,
    },
    /// A USM report the request cannot recover from.
    #[error("{agent}: {error}")]
    Usm { agent: String, error: UsmError },
    #[error("walk of {root} on {agent} stopped: OID not increasing ({previous} then {oid})")]
    NotIncreasing {
        agent: String,
        root: Box<Oid>,
        previous: Box<Oid>,
        oid: Box<Oid>,
    },
    #[error("walk of {root} on {agent} stopped after {limit} varbinds")]
    WalkLimit {
        agent: String,
        root: Box<Oid>,
        limit: usize,
    },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    User(#[from] UserError),
}

fn failed_oid(oid: &Option<Box<Oid>>) -> String {
    match oid {
        Some(o) => format!(" ({o})"),
        None => String::new(),
    }
}

/// Stable, payload-free names for counting errors and labelling metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Timeout,
    BadResponse,
    Network,
    ErrorStatus,
    Auth,
    WalkAborted,
    Config,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Network => "network",
            ErrorKind::ErrorStatus => "error_status",
            ErrorKind::Auth => "auth",
            ErrorKind::WalkAborted => "walk_aborted",
            ErrorKind::Config => "config",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::BadResponse { .. } => ErrorKind::BadResponse,
            Error::Send { .. } | Error::Connection { .. } => ErrorKind::Network,
            Error::ErrorStatus { .. } => ErrorKind::ErrorStatus,
            Error::Usm { .. } => ErrorKind::Auth,
            Error::NotIncreasing { .. } | Error::WalkLimit { .. } => ErrorKind::WalkAborted,
            Error::Target(_) | Error::User(_) => ErrorKind::Config,
        }
    }
}

/// Why one reply was set aside while waiting for a better one.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Other(String),
}
