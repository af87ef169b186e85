//! What Redis Cluster adds: the slot of a key (so callers can split work
//! that must not cross slots) and the topology (`CLUSTER NODES`), which the
//! Overview shows and per-node commands (`SCAN`, `PUBSUB NUMSUB`) walk.

use serde::Serialize;

/// Number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag — the part
/// between the first `{` and the next `}`, when not empty — or of the
/// whole key, modulo [`SLOTS`], as Redis computes it.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum
/// Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One node of a cluster as `CLUSTER NODES` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterNode {
    /// The node's 40-character id.
    pub id: String,
    /// `host:port` clients reach it at.
    pub address: String,
    /// True for a master (primary), false for a replica.
    pub master: bool,
    /// For a replica, the id of its master.
    pub master_id: Option<String>,
    /// False when the cluster flags it failing (`fail`, `fail?`) or its
    /// link is down.
    pub healthy: bool,
    /// Slot ranges it serves (masters only), inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    /// How many slots it serves.
    pub fn slot_count(&self) -> u32 {
        self.slots
            .iter()
            .map(|(from, to)| u32::from(to - from) + 1)
            .sum()
    }

    /// Whether it serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(from, to)| (from..=to).contains(&slot))
    }
}

/// A cluster's nodes, masters first (by address), then replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub nodes: Vec<ClusterNode>,
}

impl Topology {
    /// Parses `CLUSTER NODES` output; lines it cannot read are skipped.
    pub fn parse(text: &str) -> Self {
        let mut nodes: Vec<ClusterNode> = text.lines().filter_map(parse_node).collect();
        nodes.sort_by(|a, b| {
            b.master
                .cmp(&a.master)
                .then_with(|| a.address.cmp(&b.address))
        });
        Self { nodes }
    }

    /// The masters.
    pub fn masters(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.master)
    }

    /// How many replicas there are.
    pub fn replica_count(&self) -> usize {
        self.nodes.iter().filter(|n| !n.master).count()
    }

    /// Slots served by a healthy master.
    pub fn slots_covered(&self) -> u32 {
        self.masters()
            .filter(|n| n.healthy)
            .map(ClusterNode::slot_count)
            .sum()
    }

    /// The master serving the slot of `key`, if any.
    pub fn master_of(&self, key: &[u8]) -> Option<&ClusterNode> {
        self.master_serving(slot(key))
    }

    /// The master serving `slot`, if any.
    pub fn master_serving(&self, slot: u16) -> Option<&ClusterNode> {
        self.masters().find(|n| n.serves(slot))
    }
}

/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch>
/// <link> <slot>…`; slots being migrated (`[…]`) are left out.
fn parse_node(line: &str) -> Option<ClusterNode> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    let address = fields[1].split(['@', ',']).next()?.to_owned();
    let flags: Vec<&str> = fields[2].split(',').collect();
    if flags.contains(&"noaddr") || flags.contains(&"handshake") || address.starts_with(':') {
        return None;
    }
    let master = flags.contains(&"master");
    let healthy = !flags.contains(&"fail") && !flags.contains(&"fail?") && fields[7] == "connected";
    let slots = fields[8..]
        .iter()
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((from, to)) => Some((from.parse().ok()?, to.parse().ok()?)),
            None => s.parse().ok().map(|one| (one, one)),
        })
        // A range the node could not serve is left out, not counted.
        .filter(|&(from, to): &(u16, u16)| from <= to && to < SLOTS)
        .collect();
    Some(ClusterNode {
        id: fields[0].to_owned(),
        address,
        master,
        master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
        healthy,
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag_rule() {
        // Values from Redis's own documentation and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 12_739);
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn cluster_nodes_output_becomes_a_topology() {
        let text = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002,host2 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
6ec2 127.0.0.1:30005@31005 slave,fail 67ed 0 1426238316232 5 connected
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461->-67ed] 9-3 16384
9999 :0@0 master,noaddr - 0 0 0 disconnected
";
        let topology = Topology::parse(text);
        assert_eq!(topology.nodes.len(), 5);
        let masters: Vec<&str> = topology.masters().map(|n| n.address.as_str()).collect();
        assert_eq!(
            masters,
            ["127.0.0.1:30001", "127.0.0.1:30002", "127.0.0.1:30003"]
        );
        assert_eq!(topology.replica_count(), 2);
        assert_eq!(topology.slots_covered(), 16_384);
        assert!(!topology.nodes[4].healthy, "{:?}", topology.nodes[4]);
        assert_eq!(topology.nodes[3].master_id.as_deref(), Some("e7d1"));
        let home = topology.master_of(b"foo").expect("served");
        assert_eq!(home.address, "127.0.0.1:30003");
    }
}
