//! Kafka's consumer protocol: the subscription a member sends in JoinGroup
//! and the assignment the leader sends in SyncGroup (protocol type
//! "consumer"). Embedded consumers use the same bytes as Kafka clients, so
//! both can share a group.

use crate::wire::{Reader, WireResult, Writer};

/// A member's subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Topics it wants.
    pub topics: Vec<String>,
    /// Assignor-specific data.
    pub user_data: Option<Vec<u8>>,
    /// Partitions it owned before this rebalance (version 1+).
    pub owned_partitions: Vec<(String, Vec<i32>)>,
    /// Generation of those (version 2+, -1 if unknown).
    pub generation: i32,
}

impl Subscription {
    /// Encodes as version 2.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(2).array_len(self.topics.len());
        for t in &self.topics {
            w.string(t);
        }
        w.nullable_bytes(self.user_data.as_deref());
        encode_partitions(&mut w, &self.owned_partitions);
        w.i32(self.generation);
        w.finish()
    }

    /// Decodes any version (newer ones are read as the fields we know, as
    /// Kafka specifies).
    pub fn decode(bytes: &[u8]) -> WireResult<Subscription> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if version < 0 {
            return Err(format!("bad subscription version {version}"));
        }
        let n = r.array_len(2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string()?);
        }
        let user_data = r.nullable_bytes()?;
        let mut s = Subscription {
            topics,
            user_data,
            owned_partitions: Vec::new(),
            generation: -1,
        };
        if version >= 1 && !r.is_empty() {
            s.owned_partitions = decode_partitions(&mut r)?;
        }
        if version >= 2 && !r.is_empty() {
            s.generation = r.i32()?;
        }
        Ok(s)
    }
}

/// A member's assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Partitions per topic.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// Assignor-specific data.
    pub user_data: Option<Vec<u8>>,
}

impl Assignment {
    /// Encodes as version 0 (what every client reads).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.i16(0);
        encode_partitions(&mut w, &self.partitions);
        w.nullable_bytes(self.user_data.as_deref());
        w.finish()
    }

    /// Decodes any version. Empty bytes are an empty assignment (what the
    /// coordinator hands a member the leader left out).
    pub fn decode(bytes: &[u8]) -> WireResult<Assignment> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if version < 0 {
            return Err(format!("bad assignment version {version}"));
        }
        let partitions = decode_partitions(&mut r)?;
        let user_data = if r.is_empty() {
            None
        } else {
            r.nullable_bytes()?
        };
        Ok(Assignment {
            partitions,
            user_data,
        })
    }

    /// The assigned partitions as (topic, partition) pairs.
    pub fn topic_partitions(&self) -> Vec<(String, i32)> {
        self.partitions
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect()
    }
}

fn encode_partitions(w: &mut Writer, parts: &[(String, Vec<i32>)]) {
    w.array_len(parts.len());
    for (topic, ps) in parts {
        w.string(topic).array_len(ps.len());
        for p in ps {
            w.i32(*p);
        }
    }
}

fn decode_partitions(r: &mut Reader<'_>) -> WireResult<Vec<(String, Vec<i32>)>> {
    let n = r.array_len(6)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.string()?;
        let m = r.array_len(4)?;
        let mut ps = Vec::with_capacity(m);
        for _ in 0..m {
            ps.push(r.i32()?);
        }
        out.push((topic, ps));
    }
    Ok(out)
}

/// Groups (topic, partition) pairs by topic, sorted.
pub fn by_topic(pairs: &[(String, i32)]) -> Vec<(String, Vec<i32>)> {
    let mut map: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
    for (t, p) in pairs {
        map.entry(t.clone()).or_default().push(*p);
    }
    map.into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            (t, ps)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_older_versions() {
        let s = Subscription {
            topics: vec!["a".into(), "b".into()],
            user_data: Some(vec![1, 2]),
            owned_partitions: vec![("a".into(), vec![0, 3])],
            generation: 7,
        };
        assert_eq!(Subscription::decode(&s.encode()), Ok(s));
        // Version 0 as librdkafka sends it: version, topics, null user data.
        let mut w = Writer::new();
        w.i16(0).array_len(1).string("t").nullable_bytes(None);
        let v0 = Subscription::decode(&w.finish()).expect("v0");
        assert_eq!(v0.topics, ["t"]);
        assert_eq!(v0.generation, -1);
        let a = Assignment {
            partitions: vec![("t".into(), vec![1, 2])],
            user_data: None,
        };
        assert_eq!(Assignment::decode(&a.encode()), Ok(a));
        assert_eq!(Assignment::decode(&[]), Ok(Assignment::default()));
        assert!(Subscription::decode(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }
}
