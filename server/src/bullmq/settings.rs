//! Where the BullMQ queues are, as the configuration gives it (`--bullmq`,
//! `--bullmq-prefix`, `--bullmq-queues`).

use std::time::Duration;

use crate::config::secret::SecretUrl;

/// Where the BullMQ queues are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BullSettings {
    /// The Redis holding them.
    pub url: SecretUrl,
    /// Their key prefix (`bull` unless the producers chose another).
    pub prefix: String,
    /// Only these queues, instead of discovering them.
    pub queues: Vec<String>,
    /// How often the queue list is looked for again ([`super::DISCOVER_EVERY`]).
    pub discover_every: Duration,
}
