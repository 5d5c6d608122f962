//! Faults a simulated agent can be told to have.
//!
//! A rule is `[SELECTOR:]KIND[=VALUE]`:
//! * SELECTOR: `N%` (that share of the devices, picked from the seed), a
//!   device or recording name, or nothing (every device).
//! * KIND: `latency=D` or `latency=D1..D2` (a fixed or uniformly spread delay,
//!   e.g. `5ms`, `1ms..50ms`), `loss=P` (drop that share of requests, `0.1` or
//!   `10%`), `silence` (never answer), `wrong-id` (answer with another
//!   request-id), `truncate` (cut answers short), `malformed` (answer with a
//!   broken varbind), `non-increasing` (GETNEXT/GETBULK return the OID they
//!   were asked about), `toobig=BYTES` (answer tooBig instead of a response
//!   larger than BYTES, even to GETBULK).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::image::{name_hash, unit};

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    Latency { min: Duration, max: Duration },
    Loss(f64),
    Silence,
    WrongRequestId,
    Truncate,
    Malformed,
    NonIncreasing,
    TooBig(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    All,
    Share(f64),
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub selector: Selector,
    pub kind: FaultKind,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (e.g. 5ms, 1.5s, 200us)"))?;
    let secs = match unit {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        _ => return Err(format!("bad duration unit in {text:?} (us, ms or s)")),
    };
    if !secs.is_finite() || !(0.0..=3600.0).contains(&secs) {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_share(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (text, 1.0),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("bad share {text:?} (e.g. 0.05 or 5%)"))?;
    let v = v / scale;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!(
            "share {text:?} must be between 0 and 1 (or 0% and 100%)"
        ));
    }
    Ok(v)
}

impl FromStr for FaultRule {
    type Err = String;

    fn from_str(spec: &str) -> Result<FaultRule, String> {
        let (selector, rest) = match spec.split_once(':') {
            Some((sel, rest)) if !sel.contains('=') => {
                let selector = if sel.ends_with('%') {
                    Selector::Share(parse_share(sel)?)
                } else if sel == "all" {
                    Selector::All
                } else {
                    Selector::Name(sel.to_string())
                };
                (selector, rest)
            }
            _ => (Selector::All, spec),
        };
        let (name, value) = match rest.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        let need = |what: &str| value.ok_or_else(|| format!("fault {name} needs a value ({what})"));
        let kind = match name {
            "latency" => {
                let v = need("latency=5ms or latency=1ms..50ms")?;
                let (min, max) = match v.split_once("..") {
                    Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
                    None => {
                        let d = parse_duration(v)?;
                        (d, d)
                    }
                };
                if max < min {
                    return Err(format!("latency range {v:?} runs backwards"));
                }
                FaultKind::Latency { min, max }
            }
            "loss" => FaultKind::Loss(parse_share(need("loss=0.1 or loss=10%")?)?),
            "silence" => FaultKind::Silence,
            "wrong-id" => FaultKind::WrongRequestId,
            "truncate" => FaultKind::Truncate,
            "malformed" => FaultKind::Malformed,
            "non-increasing" => FaultKind::NonIncreasing,
            "toobig" => {
                let v = need("toobig=BYTES")?;
                let n: usize = v.parse().map_err(|_| format!("bad byte count {v:?}"))?;
                if n < 100 {
                    return Err("toobig limit below 100 bytes leaves no room for any reply".into());
                }
                FaultKind::TooBig(n)
            }
            other => {
                return Err(format!(
                    "unknown fault {other:?} (latency, loss, silence, wrong-id, truncate, malformed, non-increasing, toobig)"
                ));
            }
        };
        Ok(FaultRule { selector, kind })
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::All => {}
            Selector::Share(s) => write!(f, "{}%:", s * 100.0)?,
            Selector::Name(n) => write!(f, "{n}:")?,
        }
        match &self.kind {
            FaultKind::Latency { min, max } => write!(f, "latency={min:?}..{max:?}"),
            FaultKind::Loss(p) => write!(f, "loss={p}"),
            FaultKind::Silence => write!(f, "silence"),
            FaultKind::WrongRequestId => write!(f, "wrong-id"),
            FaultKind::Truncate => write!(f, "truncate"),
            FaultKind::Malformed => write!(f, "malformed"),
            FaultKind::NonIncreasing => write!(f, "non-increasing"),
            FaultKind::TooBig(n) => write!(f, "toobig={n}"),
        }
    }
}

/// The faults one device has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub latency: Option<(Duration, Duration)>,
    pub loss: f64,
    pub silent: bool,
    pub wrong_id: bool,
    pub truncate: bool,
    pub malformed: bool,
    pub non_increasing: bool,
    pub too_big: Option<usize>,
}

impl Faults {
    /// The faults of the rules that select this device.
    pub fn for_device(rules: &[FaultRule], name: &str, seed: u64) -> Faults {
        let name_hash = name_hash(name);
        let mut faults = Faults::default();
        for (i, rule) in rules.iter().enumerate() {
            let selected = match &rule.selector {
                Selector::All => true,
                Selector::Name(n) => n == name,
                Selector::Share(s) => unit(seed ^ name_hash, 0xfa17 + i as u64) < *s,
            };
            if !selected {
                continue;
            }
            match &rule.kind {
                FaultKind::Latency { min, max } => faults.latency = Some((*min, *max)),
                FaultKind::Loss(p) => faults.loss = *p,
                FaultKind::Silence => faults.silent = true,
                FaultKind::WrongRequestId => faults.wrong_id = true,
                FaultKind::Truncate => faults.truncate = true,
                FaultKind::Malformed => faults.malformed = true,
                FaultKind::NonIncreasing => faults.non_increasing = true,
                FaultKind::TooBig(n) => faults.too_big = Some(*n),
            }
        }
        faults
    }

    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules() {
        let r: FaultRule = "2%:silence".parse().unwrap();
        assert_eq!(r.selector, Selector::Share(0.02));
        assert_eq!(r.kind, FaultKind::Silence);
        let r: FaultRule = "latency=1ms..50ms".parse().unwrap();
        assert_eq!(
            r.kind,
            FaultKind::Latency {
                min: Duration::from_millis(1),
                max: Duration::from_millis(50)
            }
        );
        let r: FaultRule = "sw-00007:loss=50%".parse().unwrap();
        assert_eq!(r.selector, Selector::Name("sw-00007".into()));
        assert_eq!(r.kind, FaultKind::Loss(0.5));
        for bad in [
            "latency",
            "loss=2",
            "toobig=10",
            "fly",
            "latency=5ms..1ms",
            "latency=3h",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_share_selects_about_that_share_and_the_same_devices_each_time() {
        let rules = vec!["10%:silence".parse().unwrap()];
        let silent: Vec<bool> = (0..10_000)
            .map(|i| Faults::for_device(&rules, &format!("dev{i}"), 1).silent)
            .collect();
        let n = silent.iter().filter(|s| **s).count();
        assert!((800..1200).contains(&n), "{n} of 10000 selected");
        let again: Vec<bool> = (0..10_000)
            .map(|i| Faults::for_device(&rules, &format!("dev{i}"), 1).silent)
            .collect();
        assert_eq!(silent, again);
    }
}
