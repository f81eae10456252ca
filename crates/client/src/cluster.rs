//! A cluster seen from one client: the bootstrap connection, the brokers
//! that metadata names, one connection per broker opened on first use, and
//! the routing of partition requests to leaders and group requests to the
//! group's coordinator. On a single-node broker everything goes over the
//! bootstrap connection. Every connection is secured alike (TLS, SASL) by
//! the cluster's [`Security`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use kafka_protocol::messages::{FindCoordinatorRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

use crate::admin;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
use crate::security::Security;

/// How long FindCoordinator is retried while the answer is retriable.
pub const COORDINATOR_WAIT: Duration = Duration::from_secs(30);

/// A topic's partitions and their leaders.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Partition index -> leader broker id, in partition order.
    pub partitions: Vec<(i32, i32)>,
}

impl TopicInfo {
    /// Partition indexes, in order.
    pub fn indexes(&self) -> Vec<i32> {
        self.partitions.iter().map(|&(p, _)| p).collect()
    }

    /// The leader of `partition`, if the partition exists.
    pub fn leader(&self, partition: i32) -> Option<i32> {
        self.partitions
            .iter()
            .find(|&&(p, _)| p == partition)
            .map(|&(_, l)| l)
    }
}

/// Connections to a cluster.
#[derive(Debug)]
pub struct Cluster {
    bootstrap: String,
    client_id: String,
    /// How every connection is secured.
    security: Arc<Security>,
    /// Open connections by address; the bootstrap one is always here.
    conns: HashMap<String, Connection>,
    /// Broker id -> address, from the last metadata.
    brokers: HashMap<i32, String>,
    /// Group -> its coordinator's address, once found.
    coordinators: HashMap<String, String>,
}

impl Cluster {
    /// Connects to the bootstrap broker over plain TCP.
    pub async fn connect(bootstrap: &str, client_id: &str) -> Result<Cluster> {
        Self::connect_secure(bootstrap, client_id, Arc::new(Security::plaintext())).await
    }

    /// Connects to the bootstrap broker, and later to the others, as
    /// `security` says.
    pub async fn connect_secure(
        bootstrap: &str,
        client_id: &str,
        security: Arc<Security>,
    ) -> Result<Cluster> {
        let conn = Connection::connect_secure(bootstrap, client_id, &security).await?;
        let mut conns = HashMap::new();
        conns.insert(bootstrap.to_string(), conn);
        Ok(Cluster {
            bootstrap: bootstrap.to_string(),
            client_id: client_id.to_string(),
            security,
            conns,
            brokers: HashMap::new(),
            coordinators: HashMap::new(),
        })
    }

    /// How this cluster's connections are secured.
    pub fn security(&self) -> &Arc<Security> {
        &self.security
    }

    /// The bootstrap connection (admin requests any broker answers).
    pub fn bootstrap(&mut self) -> Result<&mut Connection> {
        self.conns
            .get_mut(&self.bootstrap)
            .ok_or_else(|| ClientError::Other("the bootstrap connection is gone".into()))
    }

    /// The connection to `addr`, opened if needed.
    pub async fn at(&mut self, addr: &str) -> Result<&mut Connection> {
        if !self.conns.contains_key(addr) {
            let conn = Connection::connect_secure(addr, &self.client_id, &self.security).await?;
            self.conns.insert(addr.to_string(), conn);
        }
        self.conns
            .get_mut(addr)
            .ok_or_else(|| ClientError::Other(format!("no connection to {addr}")))
    }

    /// The connection to broker `id` (as named by the last metadata).
    pub async fn node(&mut self, id: i32) -> Result<&mut Connection> {
        let addr = match self.brokers.get(&id) {
            Some(a) => a.clone(),
            None => {
                self.metadata(Some(&[])).await?;
                self.brokers
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| ClientError::Other(format!("broker {id} is not in metadata")))?
            }
        };
        self.at(&addr).await
    }

    /// Metadata of `topics` (all for `None`); remembers broker addresses.
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> Result<MetadataResponse> {
        let m = admin::metadata(self.bootstrap()?, topics).await?;
        for b in &m.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
        }
        Ok(m)
    }

    /// A topic's partitions and leaders, or `ClientError::UnknownTopic`.
    pub async fn topic(&mut self, name: &str) -> Result<TopicInfo> {
        let m = self.metadata(Some(&[name])).await?;
        let t = m
            .topics
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Other(format!("no metadata for topic {name}")))?;
        crate::error::check_topic(
            t.error_code,
            name,
            || format!("metadata of topic {name}"),
            None,
        )?;
        let mut partitions: Vec<(i32, i32)> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        partitions.sort_unstable();
        Ok(TopicInfo {
            name: name.to_string(),
            partitions,
        })
    }

    /// The partitions of a topic this client has just created. Kafka answers
    /// CreateTopics once its controller has the topic, a moment before the
    /// broker's own metadata shows it (UNKNOWN_TOPIC_OR_PARTITION, or
    /// partitions without a leader yet), so the retriable answers are asked
    /// again for up to [`COORDINATOR_WAIT`], as Kafka's admin client waits.
    pub async fn created_topic(&mut self, name: &str) -> Result<TopicInfo> {
        let deadline = Instant::now() + COORDINATOR_WAIT;
        let mut backoff = Duration::from_millis(20);
        loop {
            let answer = self.topic(name).await;
            let settled = match &answer {
                Ok(info) => {
                    !info.partitions.is_empty()
                        && info.partitions.iter().all(|&(_, leader)| leader >= 0)
                }
                Err(ClientError::UnknownTopic(_)) => false,
                Err(ClientError::Kafka { error, .. }) => !error.is_retriable(),
                Err(_) => true,
            };
            if settled || Instant::now() + backoff > deadline {
                return answer;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// The connection to `group`'s coordinator.
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Connection> {
        let addr = self.coordinator_addr(group).await?;
        self.at(&addr).await
    }

    /// Forgets where `group`'s coordinator is (after an error from it), so
    /// the next call asks FindCoordinator again.
    pub fn forget_coordinator(&mut self, group: &str) {
        if let Some(addr) = self.coordinators.remove(group) {
            if addr != self.bootstrap {
                self.conns.remove(&addr);
            }
        }
    }

    /// The address of `group`'s coordinator (FindCoordinator, then
    /// remembered until `forget_coordinator`). Retriable answers are asked
    /// again for up to [`COORDINATOR_WAIT`], as Kafka's own clients do: a
    /// Kafka broker answers COORDINATOR_NOT_AVAILABLE while it creates
    /// `__consumer_offsets` for the first group.
    pub async fn coordinator_addr(&mut self, group: &str) -> Result<String> {
        if let Some(addr) = self.coordinators.get(group) {
            return Ok(addr.clone());
        }
        let conn = self.bootstrap()?;
        let v = conn.versions().pick::<FindCoordinatorRequest>(0..=3)?;
        let mut req =
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.into()));
        if v >= 1 {
            req = req.with_key_type(0);
        }
        let deadline = Instant::now() + COORDINATOR_WAIT;
        let mut backoff = Duration::from_millis(50);
        let resp = loop {
            let resp = conn.call(v, &req).await?;
            let retriable =
                ResponseError::try_from_code(resp.error_code).is_some_and(|e| e.is_retriable());
            if !retriable || Instant::now() + backoff > deadline {
                break resp;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        };
        check(
            resp.error_code,
            || format!("finding the coordinator of group {group}"),
            resp.error_message.as_deref(),
        )?;
        let addr = format!("{}:{}", resp.host.as_str(), resp.port);
        self.coordinators.insert(group.to_string(), addr.clone());
        Ok(addr)
    }
}
