//! Where modules read SNMP from: a live session, or an in-memory image of
//! a recording (tests, the conformance suite).

use futures_util::future::BoxFuture;

use crate::snmp::{self, Oid, Session, Value, VarBind};

/// The SNMP operations modules use. Modules never do IO themselves; they
/// ask a source.
pub trait SnmpSource: Send + Sync {
    /// GET of any number of OIDs; a missing object comes back as
    /// noSuchObject or noSuchInstance.
    fn get<'a>(&'a self, oids: &'a [Oid]) -> BoxFuture<'a, Result<Vec<VarBind>, snmp::Error>>;
    /// Every varbind below `root`, in agent order, each handed to `each`
    /// as it arrives: a walk's varbinds are never all held at once.
    fn walk_each<'a>(
        &'a self,
        root: &'a Oid,
        each: &'a mut (dyn FnMut(VarBind) + Send),
    ) -> BoxFuture<'a, Result<(), snmp::Error>>;

    /// OIDs per GET request for this device (LibreNMS's `snmp_max_oid`).
    fn max_oids(&self) -> usize {
        10
    }

    /// The same agent in another SNMP context (LibreNMS's
    /// `SnmpQuery::context`), when the source has contexts.
    fn in_context(&self, _context: &str) -> Option<Box<dyn SnmpSource>> {
        None
    }
}

impl SnmpSource for Session {
    fn max_oids(&self) -> usize {
        self.options().max_oids_per_pdu.max(1)
    }

    fn in_context(&self, context: &str) -> Option<Box<dyn SnmpSource>> {
        Some(Box::new(Session::in_context(self, context)))
    }

    fn get<'a>(&'a self, oids: &'a [Oid]) -> BoxFuture<'a, Result<Vec<VarBind>, snmp::Error>> {
        Box::pin(Session::get(self, oids))
    }

    fn walk_each<'a>(
        &'a self,
        root: &'a Oid,
        each: &'a mut (dyn FnMut(VarBind) + Send),
    ) -> BoxFuture<'a, Result<(), snmp::Error>> {
        Box::pin(async move {
            self.walk_with(root, each).await?;
            Ok(())
        })
    }
}

/// An agent's MIB held in memory: a recording's varbinds, sorted.
#[derive(Debug, Clone, Default)]
pub struct RecordingSource {
    varbinds: Vec<VarBind>,
    /// Where snmpsim would stop a walk (see [`RecordingSource::with_walls`]).
    walls: Vec<Oid>,
}

impl RecordingSource {
    pub fn new(mut varbinds: Vec<VarBind>) -> RecordingSource {
        varbinds.sort_by(|a, b| a.oid.cmp(&b.oid));
        varbinds.dedup_by(|a, b| a.oid == b.oid);
        RecordingSource {
            varbinds,
            walls: Vec::new(),
        }
    }

    /// Imitates snmpsim, which ends a walk at a record it cannot read: a
    /// walk returns nothing at or past a wall. Data recorded through
    /// snmpsim (LibreNMS's test data) is only reproducible this way.
    pub fn with_walls(mut self, mut walls: Vec<Oid>) -> RecordingSource {
        walls.sort();
        self.walls = walls;
        self
    }

    pub fn get_now(&self, oids: &[Oid]) -> Vec<VarBind> {
        oids.iter()
            .map(
                |oid| match self.varbinds.binary_search_by(|vb| vb.oid.cmp(oid)) {
                    Ok(i) => self.varbinds[i].clone(),
                    Err(i) => {
                        // An object with instances below it exists, this instance
                        // does not: noSuchInstance; otherwise noSuchObject.
                        let arcs = oid.arcs();
                        let parent = &arcs[..arcs.len().saturating_sub(1)];
                        let under = |j: usize| {
                            self.varbinds
                                .get(j)
                                .is_some_and(|vb| vb.oid.arcs().starts_with(parent))
                        };
                        let parent_known = arcs.len() > 1 && (under(i) || (i > 0 && under(i - 1)));
                        let value = if parent_known {
                            Value::NoSuchInstance
                        } else {
                            Value::NoSuchObject
                        };
                        VarBind::new(oid.clone(), value)
                    }
                },
            )
            .collect()
    }

    pub fn walk_now(&self, root: &Oid) -> Vec<VarBind> {
        let start = self
            .varbinds
            .partition_point(|vb| vb.oid.cmp(root) != std::cmp::Ordering::Greater);
        let wall = self.walls.iter().find(|w| *w > root);
        self.varbinds[start..]
            .iter()
            .take_while(|vb| vb.oid.arcs().starts_with(root.arcs()))
            .take_while(|vb| wall.is_none_or(|w| vb.oid < *w))
            .cloned()
            .collect()
    }
}

impl SnmpSource for RecordingSource {
    fn get<'a>(&'a self, oids: &'a [Oid]) -> BoxFuture<'a, Result<Vec<VarBind>, snmp::Error>> {
        Box::pin(async move { Ok(self.get_now(oids)) })
    }

    fn walk_each<'a>(
        &'a self,
        root: &'a Oid,
        each: &'a mut (dyn FnMut(VarBind) + Send),
    ) -> BoxFuture<'a, Result<(), snmp::Error>> {
        Box::pin(async move {
            self.walk_now(root).into_iter().for_each(each);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(oid: &str, v: i64) -> VarBind {
        VarBind::new(oid.parse().unwrap(), Value::Integer(v))
    }

    #[test]
    fn an_image_answers_gets_and_walks() {
        let src = RecordingSource::new(vec![
            vb("1.3.6.1.2.1.2.2.1.1.2", 2),
            vb("1.3.6.1.2.1.2.2.1.1.1", 1),
            vb("1.3.6.1.2.1.1.3.0", 99),
            vb("1.3.6.1.2.1.31.1.1.1.1.1", 5),
        ]);
        let walk = src.walk_now(&"1.3.6.1.2.1.2.2.1".parse().unwrap());
        assert_eq!(walk.len(), 2);
        assert_eq!(walk[0].value, Value::Integer(1));
        let got = src.get_now(&[
            "1.3.6.1.2.1.1.3.0".parse().unwrap(),
            "1.3.6.1.2.1.2.2.1.1.9".parse().unwrap(),
            "1.3.6.1.4.1.9.9.9.0".parse().unwrap(),
        ]);
        assert_eq!(got[0].value, Value::Integer(99));
        assert_eq!(got[1].value, Value::NoSuchInstance);
        assert_eq!(got[2].value, Value::NoSuchObject);
    }
}
