//! RRD files the way LibreNMS names and defines them, and the writers that
//! put updates into them: rrdcached over TCP or a unix socket, or local
//! files through librrd. Only this module talks to rrdcached or librrd.

pub mod def;
pub mod graph;
mod librrd;
pub mod local;
pub mod rrdcached;
pub mod writer;

pub use def::{CreateSpec, Datum, Ds, DsType, Rra, RrdDef, RrdFile, RrdUpdate, ds};
pub use writer::{RrdSink, RrdStats, RrdWriter};
