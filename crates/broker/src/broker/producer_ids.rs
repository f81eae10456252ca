//! Idempotent producer ids: handed out from blocks whose end is persisted in
//! the broker file first, so no id is ever handed out twice, even across
//! restarts.

use super::{Broker, Inner};
use crate::error::Result;
use crate::metadata::{self, BrokerMeta, BROKER_FILE, KIND_BROKER};

/// Producer ids handed out per persisted block.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// The next id and the end of the persisted block it comes from.
#[derive(Debug)]
pub(super) struct ProducerIds {
    next: i64,
    block_end: i64,
}

impl ProducerIds {
    /// Ids from `next_block` on (the broker file's `next_producer_id_block`).
    pub(super) fn from_block(next_block: i64) -> Self {
        ProducerIds {
            next: next_block,
            block_end: next_block,
        }
    }
}

impl Inner {
    /// A producer id never handed out before, even across restarts.
    pub(super) fn next_producer_id(&self) -> Result<i64> {
        let mut ids = self.producer_ids.lock();
        if ids.next >= ids.block_end {
            let block_end = ids.next + PRODUCER_ID_BLOCK;
            metadata::write(
                &self.dir.join(BROKER_FILE),
                KIND_BROKER,
                &BrokerMeta {
                    cluster_id: self.cluster_id.clone(),
                    next_producer_id_block: block_end,
                    generation: self.generation,
                },
            )?;
            ids.block_end = block_end;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }
}

impl Broker {
    /// A new idempotent producer id (never reused, even across restarts) and
    /// its epoch.
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        Ok((self.inner.next_producer_id()?, 0))
    }
}
