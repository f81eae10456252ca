//! Fetch sessions (KIP-227): the broker remembers, per session, the
//! partitions a client fetches and what it last told the client about each,
//! so an incremental fetch names only the partitions whose fetch position
//! changed and its answer carries only the partitions with something new.
//!
//! This module is the state machine and the cache, with no I/O: the fetch
//! handler asks [`SessionCache::begin`] what a request means, reads the
//! partitions it is told to read, in the order given, and hands what it read
//! to [`SessionCache::create`] (a full fetch) or [`SessionCache::complete`]
//! (an incremental one), which say which partitions the answer carries.
//!
//! The rules are Kafka's (`FetchSession.scala`, `FetchManager.newContext`):
//!
//! - A request's (session id, epoch): epoch 0 ([`INITIAL_EPOCH`]) is a full
//!   fetch that asks for a new session (any session it names is closed
//!   first); epoch -1 ([`FINAL_EPOCH`]) is a full fetch without a session
//!   (closing the one it names). Any other epoch is incremental: an unknown
//!   id is FETCH_SESSION_ID_NOT_FOUND (70), an epoch other than the
//!   session's next one is INVALID_FETCH_SESSION_EPOCH (71). A new session
//!   expects epoch 1 next; epochs wrap from `i32::MAX` to 1.
//! - An incremental request adds or updates the partitions it names and
//!   removes its forgotten ones; a session left with no partition is closed
//!   and the fetch answered without one.
//! - An incremental answer carries a partition that has records, a high
//!   watermark or log start offset other than last sent, an error, or a
//!   diverging epoch. After an error the remembered high watermark is -1,
//!   so the partition is sent again once the error clears.
//! - Fairness: a partition carried in an answer moves to the end of the
//!   session's order, and partitions are read in that order, so one busy
//!   partition cannot take a response's whole byte budget fetch after fetch.
//! - The cache holds up to `max.incremental.fetch.session.cache.slots`
//!   (1000) sessions. When full, a new session may evict: the least recently
//!   used session if unused for longer than the eviction time (120 s,
//!   Kafka's minimum); otherwise the least valuable session older than the
//!   eviction time, if the new one is worth more (privileged, that is a
//!   follower's, beats a consumer's; then more partitions beat fewer). A
//!   privileged session may also evict a young unprivileged one. Otherwise
//!   no session is created and the full fetch is answered with session id 0.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;

/// The epoch of a full fetch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch without a session (or closing one).
pub const FINAL_EPOCH: i32 = -1;
/// The session id of "no session".
pub const NO_SESSION: i32 = 0;
/// Kafka's `max.incremental.fetch.session.cache.slots` default.
pub const DEFAULT_SLOTS: usize = 1000;
/// Kafka's minimum time a session stays before it may be evicted (also how
/// long unused before it counts as stale).
pub const DEFAULT_EVICTION: Duration = Duration::from_secs(120);

/// The epoch expected after `epoch`.
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// A partition of a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    /// The topic.
    pub topic: TopicName,
    /// The partition index.
    pub partition: i32,
}

/// What the client asked of one partition (the last time it named it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchParams {
    /// Where to read from.
    pub fetch_offset: i64,
    /// The partition's byte budget.
    pub max_bytes: i32,
    /// The leader epoch the client knows (-1: none).
    pub current_leader_epoch: i32,
    /// The epoch of the last record the client fetched (-1: none).
    pub last_fetched_epoch: i32,
}

/// What the client was last told about a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// High watermark (-1: unknown, or the last answer was an error).
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
}

impl Sent {
    /// Nothing sent yet.
    pub const NOTHING: Sent = Sent {
        high_watermark: -1,
        log_start_offset: -1,
    };
}

/// One partition to read for a request, with what the client last heard of
/// it ([`Sent::NOTHING`] outside a session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToRead {
    /// The partition.
    pub key: PartitionKey,
    /// What to read.
    pub params: FetchParams,
    /// What the client last heard.
    pub sent: Sent,
}

/// What a read of one partition produced, as far as sessions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    /// Record bytes were read.
    pub has_records: bool,
    /// The answer's high watermark.
    pub high_watermark: i64,
    /// The answer's log start offset.
    pub log_start_offset: i64,
    /// The answer's error code (0: none).
    pub error_code: i16,
    /// The answer carries a diverging epoch.
    pub diverging: bool,
}

impl ReadSummary {
    /// Whether an incremental answer must carry this partition, given what
    /// the client last heard of it.
    pub fn must_send(&self, sent: &Sent) -> bool {
        self.has_records
            || self.error_code != 0
            || self.diverging
            || self.high_watermark != sent.high_watermark
            || self.log_start_offset != sent.log_start_offset
    }

    /// What the client knows once this was sent.
    fn sent(&self) -> Sent {
        Sent {
            // An error forgets the high watermark: the partition is sent
            // again when the error clears.
            high_watermark: if self.error_code != 0 {
                -1
            } else {
                self.high_watermark
            },
            log_start_offset: self.log_start_offset,
        }
    }
}

/// The (session id, epoch) of a request and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequestSession {
    /// The request's session id.
    pub session_id: i32,
    /// The request's session epoch.
    pub epoch: i32,
    /// A follower's fetch (a privileged session).
    pub privileged: bool,
}

/// What a fetch request means, from [`SessionCache::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A full fetch of the request's partitions, without a session.
    Sessionless(Vec<ToRead>),
    /// A full fetch of the request's partitions, then
    /// [`SessionCache::create`] may open a session.
    Full(Vec<ToRead>),
    /// An incremental fetch of a session's partitions, in the session's order.
    Incremental {
        /// The session.
        session_id: i32,
        /// The session's epoch once this request was accepted.
        epoch: i32,
        /// Every partition of the session.
        partitions: Vec<ToRead>,
    },
    /// Answer this error code with no partition and session id 0.
    Refuse(i16),
}

/// A partition of a session: what was asked of it and what was sent.
#[derive(Debug)]
struct Cached {
    key: PartitionKey,
    params: FetchParams,
    sent: Sent,
}

#[derive(Debug)]
struct Session {
    privileged: bool,
    /// The epoch the next request must carry.
    epoch: i32,
    created: Instant,
    last_used: Instant,
    /// The partitions in read order (by position); a partition sent moves
    /// to the end. Reading them all needs no hashing.
    order: BTreeMap<u64, Cached>,
    /// Each partition's position in `order`.
    positions: HashMap<PartitionKey, u64>,
    next_position: u64,
}

impl Session {
    fn new(privileged: bool, now: Instant) -> Session {
        Session {
            privileged,
            epoch: next_epoch(INITIAL_EPOCH),
            created: now,
            last_used: now,
            order: BTreeMap::new(),
            positions: HashMap::new(),
            next_position: 0,
        }
    }

    fn len(&self) -> usize {
        self.positions.len()
    }

    /// Adds `key` at the end, or updates what was asked of it (its place
    /// is kept).
    fn upsert(&mut self, key: &PartitionKey, params: FetchParams, sent: Sent) {
        if let Some(c) = self
            .positions
            .get(key)
            .and_then(|at| self.order.get_mut(at))
        {
            c.params = params;
            return;
        }
        let position = self.next_position;
        self.next_position += 1;
        self.positions.insert(key.clone(), position);
        self.order.insert(
            position,
            Cached {
                key: key.clone(),
                params,
                sent,
            },
        );
    }

    fn forget(&mut self, key: &PartitionKey) {
        if let Some(at) = self.positions.remove(key) {
            self.order.remove(&at);
        }
    }

    /// Records what was sent of `key` and moves it to the end.
    fn sent(&mut self, key: &PartitionKey, sent: Sent) {
        let Some(at) = self.positions.get_mut(key) else {
            return;
        };
        let Some(mut c) = self.order.remove(at) else {
            return;
        };
        c.sent = sent;
        *at = self.next_position;
        self.order.insert(self.next_position, c);
        self.next_position += 1;
    }

    fn in_order(&self) -> Vec<ToRead> {
        self.order
            .values()
            .map(|c| ToRead {
                key: c.key.clone(),
                params: c.params,
                sent: c.sent,
            })
            .collect()
    }
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct SessionCache {
    slots: usize,
    eviction: Duration,
    sessions: HashMap<i32, Session>,
    /// Where new session ids come from (a xorshift sequence: unpredictable
    /// enough that a client cannot easily guess another's session).
    seed: u64,
    evictions: u64,
}

impl SessionCache {
    /// A cache of up to `slots` sessions (0: sessions are declined), each
    /// kept at least `eviction` before a bigger one may take its place.
    pub fn new(slots: usize, eviction: Duration) -> SessionCache {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        SessionCache {
            slots,
            eviction,
            sessions: HashMap::new(),
            seed,
            evictions: 0,
        }
    }

    /// Sessions in the cache.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No session in the cache.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions evicted to make room for others since the cache was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The partitions of a session, in read order (for tests and logs).
    pub fn partitions_of(&self, session_id: i32) -> Option<Vec<PartitionKey>> {
        let s = self.sessions.get(&session_id)?;
        Some(s.order.values().map(|c| c.key.clone()).collect())
    }

    /// What a request means. `wanted` are the partitions it names (in its
    /// order), `forgotten` those it drops from its session.
    pub fn begin(
        &mut self,
        req: &FetchRequestSession,
        wanted: Vec<(PartitionKey, FetchParams)>,
        forgotten: &[PartitionKey],
        now: Instant,
    ) -> Plan {
        let full = |wanted: Vec<(PartitionKey, FetchParams)>| -> Vec<ToRead> {
            wanted
                .into_iter()
                .map(|(key, params)| ToRead {
                    key,
                    params,
                    sent: Sent::NOTHING,
                })
                .collect()
        };
        if req.epoch == INITIAL_EPOCH || req.epoch == FINAL_EPOCH {
            if req.session_id != NO_SESSION {
                self.sessions.remove(&req.session_id);
            }
            return if req.epoch == FINAL_EPOCH {
                Plan::Sessionless(full(wanted))
            } else {
                Plan::Full(full(wanted))
            };
        }
        let Some(session) = self.sessions.get_mut(&req.session_id) else {
            return Plan::Refuse(ResponseError::FetchSessionIdNotFound.code());
        };
        if session.epoch != req.epoch {
            return Plan::Refuse(ResponseError::InvalidFetchSessionEpoch.code());
        }
        for (key, params) in &wanted {
            session.upsert(key, *params, Sent::NOTHING);
        }
        for key in forgotten {
            session.forget(key);
        }
        if session.len() == 0 {
            self.sessions.remove(&req.session_id);
            return Plan::Sessionless(full(wanted));
        }
        session.last_used = now;
        session.epoch = next_epoch(session.epoch);
        Plan::Incremental {
            session_id: req.session_id,
            epoch: session.epoch,
            partitions: session.in_order(),
        }
    }

    /// After a full fetch: opens a session holding `read` (with what was
    /// read of each) if there is room or a session worth less to evict;
    /// its id, or [`NO_SESSION`].
    pub fn create(
        &mut self,
        privileged: bool,
        read: &[ToRead],
        summaries: &[ReadSummary],
        now: Instant,
    ) -> i32 {
        if self.slots == 0 {
            return NO_SESSION;
        }
        if self.sessions.len() >= self.slots && !self.evict_for(privileged, read.len(), now) {
            return NO_SESSION;
        }
        let mut session = Session::new(privileged, now);
        for (r, summary) in read.iter().zip(summaries) {
            session.upsert(&r.key, r.params, summary.sent());
        }
        let id = self.new_id();
        self.sessions.insert(id, session);
        id
    }

    /// After an incremental fetch: which partitions of `read` (read as
    /// `summaries` say) the answer
    /// carries (remembering what they carry and moving them to the end of
    /// the session's order), or the error to answer instead
    /// (INVALID_FETCH_SESSION_EPOCH: another request of this session came
    /// in between). A session evicted meanwhile is answered as it stood.
    pub fn complete(
        &mut self,
        session_id: i32,
        epoch: i32,
        read: &[ToRead],
        summaries: &[ReadSummary],
    ) -> Result<Vec<bool>, i16> {
        let send: Vec<bool> = read
            .iter()
            .zip(summaries)
            .map(|(r, s)| s.must_send(&r.sent))
            .collect();
        if let Some(session) = self.sessions.get_mut(&session_id) {
            if session.epoch != epoch {
                return Err(ResponseError::InvalidFetchSessionEpoch.code());
            }
            for ((r, s), &send) in read.iter().zip(summaries).zip(&send) {
                if send {
                    session.sent(&r.key, s.sent());
                }
            }
        }
        Ok(send)
    }

    /// Makes room for a session of `size` partitions; false if none may go.
    fn evict_for(&mut self, privileged: bool, size: usize, now: Instant) -> bool {
        let stale = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used, **id))
            .filter(|(_, s)| now.saturating_duration_since(s.last_used) > self.eviction)
            .map(|(id, _)| *id);
        let victim = stale.or_else(|| {
            let (id, s) = self
                .sessions
                .iter()
                .filter(|(_, s)| {
                    let old = now.saturating_duration_since(s.created) > self.eviction;
                    old || (privileged && !s.privileged)
                })
                .min_by_key(|(id, s)| (s.privileged, s.len(), **id))?;
            // Kafka's comparison: (privileged, size, 0) against the
            // candidate's (privileged, size, id), whose id is above 0.
            ((privileged, size) > (s.privileged, s.len())).then_some(*id)
        });
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                self.evictions += 1;
                true
            }
            None => false,
        }
    }

    /// A positive id no session has.
    fn new_id(&mut self) -> i32 {
        loop {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            let id = (self.seed >> 33) as i32;
            if id > 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn key(topic: &str, partition: i32) -> PartitionKey {
        PartitionKey {
            topic: TopicName(StrBytes::from_string(topic.to_string())),
            partition,
        }
    }

    fn at(offset: i64) -> FetchParams {
        FetchParams {
            fetch_offset: offset,
            max_bytes: 1 << 20,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    fn req(session_id: i32, epoch: i32) -> FetchRequestSession {
        FetchRequestSession {
            session_id,
            epoch,
            privileged: false,
        }
    }

    /// A read that found `records` and the log at [start, hw).
    fn found(records: bool, start: i64, hw: i64) -> ReadSummary {
        ReadSummary {
            has_records: records,
            high_watermark: hw,
            log_start_offset: start,
            error_code: 0,
            diverging: false,
        }
    }

    /// Opens a session over `partitions` (each at log [0, 10)).
    fn open(cache: &mut SessionCache, partitions: &[PartitionKey], now: Instant) -> i32 {
        let wanted = partitions.iter().map(|k| (k.clone(), at(0))).collect();
        let Plan::Full(read) = cache.begin(&req(0, 0), wanted, &[], now) else {
            panic!("a full fetch")
        };
        let summaries = vec![found(true, 0, 10); read.len()];
        cache.create(false, &read, &summaries, now)
    }

    fn incremental(
        cache: &mut SessionCache,
        id: i32,
        epoch: i32,
        wanted: Vec<(PartitionKey, FetchParams)>,
        forgotten: &[PartitionKey],
    ) -> (i32, Vec<ToRead>) {
        match cache.begin(&req(id, epoch), wanted, forgotten, Instant::now()) {
            Plan::Incremental {
                session_id,
                epoch,
                partitions,
            } => {
                assert_eq!(session_id, id);
                (epoch, partitions)
            }
            other => panic!("not incremental: {other:?}"),
        }
    }

    #[test]
    fn epochs_count_up_and_wrap_past_the_largest() {
        assert_eq!(next_epoch(INITIAL_EPOCH), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
    }

    #[test]
    fn a_full_fetch_opens_a_session_and_incremental_fetches_follow_its_epochs() {
        let mut cache = SessionCache::new(10, DEFAULT_EVICTION);
        let (a, b) = (key("t", 0), key("t", 1));
        let id = open(&mut cache, &[a.clone(), b.clone()], Instant::now());
        assert!(id > 0);
        assert_eq!(cache.len(), 1);
        // Nothing named: both partitions are read, at their cached offsets.
        let (epoch, read) = incremental(&mut cache, id, 1, vec![], &[]);
        assert_eq!(epoch, 2);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].params.fetch_offset, 0);
        // The same epoch again is refused; so is an unknown session.
        assert_eq!(
            cache.begin(&req(id, 1), vec![], &[], Instant::now()),
            Plan::Refuse(71)
        );
        assert_eq!(
            cache.begin(&req(id.wrapping_add(1), 1), vec![], &[], Instant::now()),
            Plan::Refuse(70)
        );
        let (epoch, read) = incremental(&mut cache, id, 2, vec![(b.clone(), at(10))], &[]);
        assert_eq!(epoch, 3);
        let b_read = read.iter().find(|r| r.key == b).expect("b");
        assert_eq!(b_read.params.fetch_offset, 10, "the request updated it");
    }

    #[test]
    fn a_final_epoch_closes_the_session_and_fetches_without_one() {
        let mut cache = SessionCache::new(10, DEFAULT_EVICTION);
        let id = open(&mut cache, &[key("t", 0)], Instant::now());
        let plan = cache.begin(
            &req(id, FINAL_EPOCH),
            vec![(key("t", 0), at(3))],
            &[],
            Instant::now(),
        );
        assert!(matches!(plan, Plan::Sessionless(ref r) if r.len() == 1));
        assert!(cache.is_empty());
        // A new full fetch naming an old session closes it too.
        let id = open(&mut cache, &[key("t", 0)], Instant::now());
        let plan = cache.begin(&req(id, INITIAL_EPOCH), vec![], &[], Instant::now());
        assert!(matches!(plan, Plan::Full(_)));
        assert!(cache.is_empty());
    }

    #[test]
    fn incremental_answers_carry_only_what_changed_and_rotate_it_to_the_end() {
        let mut cache = SessionCache::new(10, DEFAULT_EVICTION);
        let keys: Vec<_> = (0..4).map(|p| key("t", p)).collect();
        let id = open(&mut cache, &keys, Instant::now());
        let (epoch, read) = incremental(&mut cache, id, 1, vec![], &[]);
        // Partition 1 has records, 2 a new high watermark, 3 an error, 0 nothing new.
        let results = vec![
            found(false, 0, 10),
            found(true, 0, 10),
            found(false, 0, 11),
            ReadSummary {
                error_code: 6,
                ..found(false, -1, -1)
            },
        ];
        assert_eq!(
            cache.complete(id, epoch, &read, &results),
            Ok(vec![false, true, true, true])
        );
        // Sent partitions went to the end, in the order sent (after 0).
        assert_eq!(cache.partitions_of(id).expect("session"), keys);
        // The next answer: 2's high watermark was remembered; 3's error made
        // it forget, so 3 comes back once it reads cleanly.
        let (epoch, read) = incremental(&mut cache, id, epoch, vec![], &[]);
        let results: Vec<_> = read
            .iter()
            .map(|r| found(false, 0, if r.key == keys[2] { 11 } else { 10 }))
            .collect();
        let sent = cache
            .complete(id, epoch, &read, &results)
            .expect("same epoch");
        let carried: Vec<_> = read
            .iter()
            .zip(&sent)
            .filter(|(_, s)| **s)
            .map(|(r, _)| r.key.clone())
            .collect();
        assert_eq!(carried, vec![keys[3].clone()]);
    }

    #[test]
    fn a_busy_partition_goes_to_the_back_of_the_line() {
        let mut cache = SessionCache::new(10, DEFAULT_EVICTION);
        let keys: Vec<_> = (0..3).map(|p| key("t", p)).collect();
        let id = open(&mut cache, &keys, Instant::now());
        let (epoch, read) = incremental(&mut cache, id, 1, vec![], &[]);
        assert_eq!(read[0].key, keys[0]);
        // Only the first partition read had room for records.
        let results: Vec<_> = (0..read.len()).map(|i| found(i == 0, 0, 10)).collect();
        cache
            .complete(id, epoch, &read, &results)
            .expect("complete");
        let (_, read) = incremental(&mut cache, id, epoch, vec![], &[]);
        let order: Vec<_> = read.iter().map(|r| r.key.partition).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn forgotten_partitions_leave_and_an_empty_session_closes() {
        let mut cache = SessionCache::new(10, DEFAULT_EVICTION);
        let (a, b) = (key("t", 0), key("u", 0));
        let id = open(&mut cache, &[a.clone(), b.clone()], Instant::now());
        let (epoch, read) = incremental(&mut cache, id, 1, vec![], std::slice::from_ref(&a));
        assert_eq!(
            read.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
            vec![b.clone()]
        );
        // A new partition named in an incremental fetch joins the session.
        let (epoch, read) = incremental(&mut cache, id, epoch, vec![(key("v", 2), at(5))], &[]);
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].sent, Sent::NOTHING);
        let plan = cache.begin(&req(id, epoch), vec![], &[b, key("v", 2)], Instant::now());
        assert_eq!(plan, Plan::Sessionless(vec![]));
        assert!(cache.is_empty());
    }

    #[test]
    fn a_request_overtaken_by_another_of_its_session_is_refused() {
        let mut cache = SessionCache::new(10, DEFAULT_EVICTION);
        let id = open(&mut cache, &[key("t", 0)], Instant::now());
        let (first, read) = incremental(&mut cache, id, 1, vec![], &[]);
        let (_second, _) = incremental(&mut cache, id, first, vec![], &[]);
        assert_eq!(
            cache.complete(id, first, &read, &[found(true, 0, 10)]),
            Err(71)
        );
    }

    #[test]
    fn a_full_cache_evicts_the_stale_then_the_smaller_old_ones_else_declines() {
        let eviction = Duration::from_secs(120);
        let mut cache = SessionCache::new(2, eviction);
        let t0 = Instant::now();
        let small = open(&mut cache, &[key("t", 0)], t0);
        let big = open(&mut cache, &[key("t", 0), key("t", 1), key("t", 2)], t0);
        assert_eq!(cache.len(), 2);
        // Young sessions cannot be evicted by a consumer's session.
        let two = [key("u", 0), key("u", 1)];
        assert_eq!(
            open(&mut cache, &two, t0 + Duration::from_secs(1)),
            NO_SESSION
        );
        // Old enough, the smallest goes for a bigger one (both were used at t0,
        // so first touch the sessions to keep them from being stale).
        let t1 = t0 + eviction + Duration::from_secs(1);
        for id in [small, big] {
            match cache.begin(&req(id, 1), vec![], &[], t1) {
                Plan::Incremental { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        // Not bigger than the smallest: declined.
        assert_eq!(open(&mut cache, &[key("w", 0)], t1), NO_SESSION);
        let newer = open(&mut cache, &two, t1);
        assert_ne!(newer, NO_SESSION);
        assert!(
            cache.partitions_of(small).is_none(),
            "the smallest was evicted"
        );
        assert!(cache.partitions_of(big).is_some());
        assert_eq!(cache.evictions(), 1);
        // Unused past the eviction time: the least recently used goes,
        // whatever its size.
        let t2 = t1 + eviction + Duration::from_secs(1);
        assert_ne!(open(&mut cache, &[key("x", 0)], t2), NO_SESSION);
        assert_eq!(cache.evictions(), 2);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_privileged_session_evicts_a_young_consumer_session() {
        let mut cache = SessionCache::new(1, DEFAULT_EVICTION);
        let t0 = Instant::now();
        let consumer = open(&mut cache, &[key("t", 0), key("t", 1)], t0);
        let read = vec![ToRead {
            key: key("t", 0),
            params: at(0),
            sent: Sent::NOTHING,
        }];
        let follower = cache.create(true, &read, &[found(false, 0, 0)], t0);
        assert_ne!(follower, NO_SESSION);
        assert!(cache.partitions_of(consumer).is_none());
        // And a consumer cannot evict a young privileged one.
        assert_eq!(
            open(&mut cache, &[key("u", 0), key("u", 1)], t0),
            NO_SESSION
        );
    }

    #[test]
    fn no_slots_means_no_sessions() {
        let mut cache = SessionCache::new(0, DEFAULT_EVICTION);
        assert_eq!(open(&mut cache, &[key("t", 0)], Instant::now()), NO_SESSION);
        assert!(cache.is_empty());
    }

    #[test]
    fn session_ids_are_positive_and_distinct() {
        let mut cache = SessionCache::new(DEFAULT_SLOTS, DEFAULT_EVICTION);
        let now = Instant::now();
        let ids: std::collections::HashSet<i32> = (0..DEFAULT_SLOTS)
            .map(|_| open(&mut cache, &[key("t", 0)], now))
            .collect();
        assert_eq!(ids.len(), DEFAULT_SLOTS);
        assert!(ids.iter().all(|&id| id > 0));
    }
}
