//! The leaf types of RRD files as LibreNMS defines them: data sources,
//! archives, file names and updates. Modules define their files with
//! these (each module owns its definitions); the writers take them.

use std::fmt;
use std::fmt::Write as _;

use crate::librenms::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsType {
    Gauge,
    Derive,
    Counter,
    Absolute,
    Dcounter,
    Dderive,
}

impl DsType {
    pub fn as_str(self) -> &'static str {
        match self {
            DsType::Gauge => "GAUGE",
            DsType::Derive => "DERIVE",
            DsType::Counter => "COUNTER",
            DsType::Absolute => "ABSOLUTE",
            DsType::Dcounter => "DCOUNTER",
            DsType::Dderive => "DDERIVE",
        }
    }

    /// A type as LibreNMS stores it (`sensors.rrd_type`).
    pub fn parse(text: &str) -> Option<DsType> {
        Some(match text {
            "GAUGE" => DsType::Gauge,
            "DERIVE" => DsType::Derive,
            "COUNTER" => DsType::Counter,
            "ABSOLUTE" => DsType::Absolute,
            "DCOUNTER" => DsType::Dcounter,
            "DDERIVE" => DsType::Dderive,
            _ => return None,
        })
    }
}

/// One data source of a definition; the heartbeat comes from the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ds {
    pub name: &'static str,
    pub kind: DsType,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

pub const fn ds(name: &'static str, kind: DsType, min: Option<f64>, max: Option<f64>) -> Ds {
    Ds {
        name,
        kind,
        min,
        max,
    }
}

/// The data sources of one kind of file, in update order.
#[derive(Debug, PartialEq)]
pub struct RrdDef {
    pub name: &'static str,
    pub datasets: &'static [Ds],
}

/// One value of an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Datum {
    Unknown,
    Uint(u64),
    Int(i64),
    Float(f64),
}

impl Datum {
    /// A value from text as SNMP gave it: numbers pass through exactly
    /// (64-bit counters included), anything else is unknown (`U`).
    pub fn parse(text: &str) -> Datum {
        let t = text.trim();
        if let Ok(u) = t.parse::<u64>() {
            Datum::Uint(u)
        } else if let Ok(i) = t.parse::<i64>() {
            Datum::Int(i)
        } else if crate::librenms::php::is_numeric(t) {
            t.parse::<f64>().map_or(Datum::Unknown, Datum::Float)
        } else {
            Datum::Unknown
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Unknown => f.write_str("U"),
            Datum::Uint(u) => write!(f, "{u}"),
            Datum::Int(i) => write!(f, "{i}"),
            Datum::Float(x) if x.is_finite() => write!(f, "{x}"),
            Datum::Float(_) => f.write_str("U"),
        }
    }
}

impl From<f64> for Datum {
    fn from(v: f64) -> Datum {
        Datum::Float(v)
    }
}

impl From<u64> for Datum {
    fn from(v: u64) -> Datum {
        Datum::Uint(v)
    }
}

impl<T: Into<Datum>> From<Option<T>> for Datum {
    fn from(v: Option<T>) -> Datum {
        v.map_or(Datum::Unknown, Into::into)
    }
}

/// A file under the RRD directory: `<host dir>/<file name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RrdFile {
    pub host_dir: String,
    pub name: String,
}

impl RrdFile {
    /// The file of `hostname` named by `parts` (joined with `-`), e.g.
    /// `RrdFile::new("sw1", &["port-id12"])`.
    pub fn new(hostname: &str, parts: &[&str]) -> RrdFile {
        RrdFile {
            host_dir: names::host_dir(hostname),
            name: names::rrd_file(parts),
        }
    }

    /// The path relative to the RRD directory (what rrdcached is sent).
    pub fn relative(&self) -> String {
        format!("{}/{}", self.host_dir, self.name)
    }
}

/// One update: a file, its definition, a time and a value per data source.
#[derive(Debug, Clone, PartialEq)]
pub struct RrdUpdate {
    pub file: RrdFile,
    pub def: &'static RrdDef,
    pub time: i64,
    pub values: Vec<Datum>,
    /// How to create the file when it differs from the writer's step,
    /// heartbeat and RRAs (icmp-perf.rrd at the fast-ping step).
    pub spec: Option<std::sync::Arc<CreateSpec>>,
}

impl RrdUpdate {
    /// Memory this update takes, heap included (for the writer's bound).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<RrdUpdate>()
            + self.file.host_dir.capacity()
            + self.file.name.capacity()
            + self.values.capacity() * std::mem::size_of::<Datum>()
    }

    pub fn new(file: RrdFile, def: &'static RrdDef, time: i64, values: Vec<Datum>) -> RrdUpdate {
        debug_assert_eq!(values.len(), def.datasets.len(), "{}", def.name);
        RrdUpdate {
            file,
            def,
            time,
            values,
            spec: None,
        }
    }

    /// The same update, for a file created with `spec`.
    pub fn with_spec(mut self, spec: std::sync::Arc<CreateSpec>) -> RrdUpdate {
        self.spec = Some(spec);
        self
    }

    /// How the file is created: its own spec, or the writer's.
    pub fn create_spec<'a>(&'a self, default: &'a CreateSpec) -> &'a CreateSpec {
        self.spec.as_deref().unwrap_or(default)
    }

    /// `time:v1:v2:...` as rrdtool takes it.
    pub fn argument(&self) -> String {
        let mut s = self.time.to_string();
        for v in &self.values {
            let _ = write!(s, ":{v}");
        }
        s
    }
}

/// The step, heartbeat and archives new files get.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSpec {
    pub step: u32,
    pub heartbeat: u32,
    pub rras: Vec<Rra>,
}

impl CreateSpec {
    pub fn from_settings(s: &crate::config::RrdSettings) -> Result<CreateSpec, String> {
        Ok(CreateSpec {
            step: s.step,
            heartbeat: s.heartbeat,
            rras: s
                .rra
                .iter()
                .map(|r| Rra::parse(r))
                .collect::<Result<_, _>>()?,
        })
    }

    /// `DS:...` arguments of a definition.
    pub fn ds_args(&self, def: &RrdDef) -> Vec<String> {
        let limit = |v: Option<f64>| v.map_or_else(|| "U".to_string(), format_number);
        def.datasets
            .iter()
            .map(|d| {
                format!(
                    "DS:{}:{}:{}:{}:{}",
                    d.name,
                    d.kind.as_str(),
                    self.heartbeat,
                    limit(d.min),
                    limit(d.max)
                )
            })
            .collect()
    }

    pub fn rra_args(&self) -> Vec<String> {
        self.rras.iter().map(Rra::to_string).collect()
    }
}

fn format_number(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e18 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// An archive: `RRA:CF:xff:steps:rows`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rra {
    pub cf: String,
    pub xff: f64,
    pub steps: u32,
    pub rows: u32,
}

impl Rra {
    pub fn parse(text: &str) -> Result<Rra, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let bad = || format!("{text:?} is not RRA:CF:xff:steps:rows");
        if parts.len() != 5 || parts[0] != "RRA" {
            return Err(bad());
        }
        if !["AVERAGE", "MIN", "MAX", "LAST"].contains(&parts[1]) {
            return Err(format!(
                "{text:?}: unknown consolidation function {}",
                parts[1]
            ));
        }
        let xff: f64 = parts[2].parse().map_err(|_| bad())?;
        if !(0.0..1.0).contains(&xff) {
            return Err(format!("{text:?}: xff must be from 0 to below 1"));
        }
        let steps: u32 = parts[3].parse().map_err(|_| bad())?;
        let rows: u32 = parts[4].parse().map_err(|_| bad())?;
        if steps == 0 || rows == 0 {
            return Err(format!("{text:?}: steps and rows must be positive"));
        }
        Ok(Rra {
            cf: parts[1].to_string(),
            xff,
            steps,
            rows,
        })
    }
}

impl fmt::Display for Rra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RRA:{}:{}:{}:{}",
            self.cf, self.xff, self.steps, self.rows
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PORT: RrdDef = RrdDef {
        name: "port",
        datasets: &[
            ds(
                "INOCTETS",
                DsType::Derive,
                Some(0.0),
                Some(12_500_000_000.0),
            ),
            ds(
                "OUTOCTETS",
                DsType::Derive,
                Some(0.0),
                Some(12_500_000_000.0),
            ),
        ],
    };
    static POLLER_PERF: RrdDef = RrdDef {
        name: "poller-perf",
        datasets: &[ds("poller", DsType::Gauge, Some(0.0), None)],
    };
    static UPTIME: RrdDef = RrdDef {
        name: "uptime",
        datasets: &[ds("uptime", DsType::Gauge, Some(0.0), None)],
    };

    #[test]
    fn definitions_render_as_librenms_creates_them() {
        let spec = CreateSpec {
            step: 300,
            heartbeat: 600,
            rras: vec![Rra::parse("RRA:AVERAGE:0.5:1:2016").unwrap()],
        };
        let ds = spec.ds_args(&PORT);
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0], "DS:INOCTETS:DERIVE:600:0:12500000000");
        assert_eq!(spec.ds_args(&POLLER_PERF), vec!["DS:poller:GAUGE:600:0:U"]);
        assert_eq!(spec.rra_args(), vec!["RRA:AVERAGE:0.5:1:2016"]);
    }

    #[test]
    fn updates_keep_64_bit_counters_exact() {
        let u = RrdUpdate::new(
            RrdFile::new("sw1", &["uptime"]),
            &UPTIME,
            1_700_000_000,
            vec![Datum::parse("18446744073709551615")],
        );
        assert_eq!(u.argument(), "1700000000:18446744073709551615");
        assert_eq!(Datum::parse("abc"), Datum::Unknown);
        assert_eq!(Datum::parse("-5").to_string(), "-5");
        assert_eq!(Datum::parse("1.5").to_string(), "1.5");
        assert_eq!(u.file.relative(), "sw1/uptime.rrd");
    }

    #[test]
    fn bad_archives_are_refused() {
        assert!(Rra::parse("RRA:AVERAGE:0.5:1").is_err());
        assert!(Rra::parse("RRA:MEDIAN:0.5:1:10").is_err());
        assert!(Rra::parse("RRA:AVERAGE:1.5:1:10").is_err());
        assert!(Rra::parse("RRA:AVERAGE:0.5:0:10").is_err());
    }
}
