//! The OIDs and RRD files of the MIB-walking modules (netstats, ucd-mib,
//! hr-mib, ip-system-stats, ucd-diskio) and of the per-OS additions to
//! ports, kept as data in the project's `mibs/` folder and built into the
//! binary. Each file names its objects
//! (`[objects]`: name = numeric OID), its RRD files (`[[rrd]]`: data
//! sources, graphs) and any lookup tables the module needs.

use std::collections::HashMap;

use serde::Deserialize;

use crate::rrd::{Ds, DsType, RrdDef};
use crate::snmp::Oid;

/// The files, by module name.
const FILES: &[(&str, &str)] = &[
    ("netstats", include_str!("../../mibs/netstats.toml")),
    ("ucd-mib", include_str!("../../mibs/ucd-mib.toml")),
    ("hr-mib", include_str!("../../mibs/hr-mib.toml")),
    (
        "ip-system-stats",
        include_str!("../../mibs/ip-system-stats.toml"),
    ),
    ("ucd-diskio", include_str!("../../mibs/ucd-diskio.toml")),
    ("ports-os", include_str!("../../mibs/ports-os.toml")),
];

/// One module's data.
#[derive(Debug)]
pub struct MibData {
    objects: HashMap<String, Oid>,
    rrds: Vec<RrdSpec>,
    tables: HashMap<String, HashMap<String, String>>,
}

/// An RRD file: its definition, the object behind each data source, and
/// the graphs writing it enables.
#[derive(Debug)]
pub struct RrdSpec {
    pub def: &'static RrdDef,
    /// The object each data source is read from (None: the code says).
    pub sources: Vec<Option<String>>,
    pub graphs: Vec<String>,
    /// Objects this file is written for, one file each (`ucd_<object>`).
    pub objects: Vec<String>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    defaults: DsFields,
    #[serde(default)]
    rrd: Vec<RrdEntry>,
    #[serde(default)]
    objects: HashMap<String, String>,
    #[serde(flatten)]
    tables: HashMap<String, toml::Value>,
}

#[derive(Deserialize, Default, Clone)]
struct DsFields {
    #[serde(rename = "type")]
    kind: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Deserialize)]
struct RrdEntry {
    name: String,
    #[serde(default)]
    graphs: Vec<String>,
    ds: Vec<DsEntry>,
    #[serde(default)]
    objects: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DsEntry {
    /// An object, its data source named after it.
    Object(String),
    Full {
        name: String,
        object: Option<String>,
        #[serde(flatten)]
        fields: DsFields,
    },
}

/// LibreNMS's data-source name: only `[A-Za-z0-9_-]`, at most 19
/// characters (`RrdDefinition::escapeDsName`).
pub fn ds_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(19)
        .collect()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn parse(module: &str, text: &str) -> Result<MibData, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("mibs/{module}.toml: {e}"))?;
    let mut objects = HashMap::new();
    for (name, oid) in &file.objects {
        let parsed: Oid = oid
            .parse()
            .map_err(|_| format!("mibs/{module}.toml: {name} = {oid:?} is not an OID"))?;
        objects.insert(name.clone(), parsed);
    }
    let mut rrds = Vec::new();
    for entry in file.rrd {
        let mut datasets = Vec::new();
        let mut sources = Vec::new();
        for ds in entry.ds {
            let (name, object, fields) = match ds {
                DsEntry::Object(o) => (ds_name(&o), Some(o), file.defaults.clone()),
                DsEntry::Full {
                    name,
                    object,
                    fields,
                } => (
                    ds_name(&name),
                    object,
                    DsFields {
                        kind: fields.kind.or(file.defaults.kind.clone()),
                        min: fields.min.or(file.defaults.min),
                        max: fields.max.or(file.defaults.max),
                    },
                ),
            };
            if let Some(o) = &object
                && !objects.contains_key(o)
            {
                return Err(format!(
                    "mibs/{module}.toml: {} names unknown object {o}",
                    entry.name
                ));
            }
            let kind_text = fields.kind.as_deref().unwrap_or("GAUGE");
            let kind = DsType::parse(kind_text)
                .ok_or_else(|| format!("mibs/{module}.toml: unknown type {kind_text}"))?;
            datasets.push(Ds {
                name: leak(name),
                kind,
                min: fields.min,
                max: fields.max,
            });
            sources.push(object);
        }
        for o in &entry.objects {
            if !objects.contains_key(o) {
                return Err(format!(
                    "mibs/{module}.toml: {} names unknown object {o}",
                    entry.name
                ));
            }
        }
        let def: &'static RrdDef = Box::leak(Box::new(RrdDef {
            name: leak(entry.name),
            datasets: Box::leak(datasets.into_boxed_slice()),
        }));
        rrds.push(RrdSpec {
            def,
            sources,
            graphs: entry.graphs,
            objects: entry.objects,
        });
    }
    let mut tables = HashMap::new();
    for (name, value) in file.tables {
        let toml::Value::Table(t) = value else {
            return Err(format!("mibs/{module}.toml: [{name}] is not a table"));
        };
        let map = t
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => Ok((k, s)),
                other => Err(format!(
                    "mibs/{module}.toml: [{name}] {k} = {other} is not text"
                )),
            })
            .collect::<Result<_, _>>()?;
        tables.insert(name, map);
    }
    Ok(MibData {
        objects,
        rrds,
        tables,
    })
}

/// A module's data, parsed once (a test checks every file).
pub fn module(name: &str) -> &'static MibData {
    static ALL: std::sync::OnceLock<HashMap<&'static str, MibData>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(m, text)| (*m, parse(m, text).unwrap_or_else(|e| panic!("{e}"))))
            .collect()
    })
    .get(name)
    .unwrap_or_else(|| panic!("no mibs/{name}.toml"))
}

impl MibData {
    /// The OID of a named object.
    pub fn oid(&self, name: &str) -> &Oid {
        self.objects
            .get(name)
            .unwrap_or_else(|| panic!("object {name} is not in its mibs/ file"))
    }

    /// The object named by `oid`, if it is one of this module's.
    pub fn name_of(&'static self, oid: &Oid) -> Option<&'static str> {
        self.objects
            .iter()
            .find(|(_, o)| *o == oid)
            .map(|(n, _)| n.as_str())
    }

    pub fn rrds(&self) -> &[RrdSpec] {
        &self.rrds
    }

    pub fn rrd(&self, name: &str) -> &RrdSpec {
        self.rrds
            .iter()
            .find(|r| r.def.name == name)
            .unwrap_or_else(|| panic!("RRD file {name} is not in its mibs/ file"))
    }

    /// A lookup table of the file (`[graphs]`, `[labels]`...).
    pub fn table(&self, name: &str) -> &HashMap<String, String> {
        static EMPTY: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
        self.tables
            .get(name)
            .unwrap_or_else(|| EMPTY.get_or_init(HashMap::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mib_file_parses_and_names_known_objects() {
        for (name, text) in FILES {
            let data = parse(name, text).unwrap();
            for r in &data.rrds {
                for ds in r.def.datasets {
                    assert!(ds.name.len() <= 19, "{name}: {}", ds.name);
                }
            }
        }
        let netstats = module("netstats");
        let snmp = netstats.rrd("netstats-snmp");
        // snmpInBadCommunityNames cut to rrdtool's 19 characters.
        assert!(
            snmp.def
                .datasets
                .iter()
                .any(|d| d.name == "snmpInBadCommunityN")
        );
        assert_eq!(
            netstats.oid("tcpCurrEstab").to_string(),
            "1.3.6.1.2.1.6.9.0"
        );
        assert_eq!(
            module("ucd-mib").table("graphs")["ssCpuRawSteal"],
            "ucd_cpu_steal"
        );
    }

    #[test]
    fn a_bad_file_is_refused_with_its_name() {
        let err = parse(
            "x",
            "[objects]\na = \"not an oid\"\n[[rrd]]\nname = \"f\"\nds = [\"a\"]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("mibs/x.toml") && err.contains("not an OID"),
            "{err}"
        );
        let err = parse("x", "[[rrd]]\nname = \"f\"\nds = [\"missing\"]\n").unwrap_err();
        assert!(err.contains("unknown object missing"), "{err}");
    }
}
