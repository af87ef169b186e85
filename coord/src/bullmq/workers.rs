//! The workers of BullMQ queues, as far as Redis can tell: BullMQ keeps no
//! worker registry, but each `Worker` names its blocking connection with
//! `CLIENT SETNAME`, so `CLIENT LIST` shows who is connected.
//!
//! The name (BullMQ 5, `QueueBase.clientName` and the `Worker`
//! constructor) is `<prefix>:<base64(queue)>` — base64 of the queue
//! name's UTF-8 bytes, standard alphabet with `=` padding, as Node's
//! `Buffer.toString('base64')` — followed by `:w:<name>` when the worker
//! was given a `name` option. `QueueEvents` connections end with `:qe`
//! instead and are not workers. `Queue.getWorkers` filters `CLIENT LIST`
//! by the same rule; this module reads it the same way.
//!
//! What a connection name **cannot** tell, so a page must not pretend to
//! know it for BullMQ workers:
//! - the worker's concurrency, and how many of its slots are busy;
//! - which jobs it is running (a job's hash may carry the `name` of the
//!   worker that took it, field `pb`, but names need not be unique);
//! - its host name, process id or start time beyond what the connection
//!   shows (the client address, and the connection's age — a worker that
//!   reconnected looks younger than it is);
//! - its BullMQ version (`lib-name`/`lib-ver`, when set, describe the Redis
//!   client library, not BullMQ);
//! - whether it is paused or closing (`Worker.pause` only stops it from
//!   asking for jobs);
//! - workers whose provider refuses `CLIENT SETNAME` or `CLIENT LIST`
//!   (some managed services): they are invisible, not absent.
//!
//! Only the blocking connection is named; a worker's other connection
//! (scripts, lock renewal) is anonymous and not listed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde::Serialize;

use super::{BullMq, check_queue};
use crate::error::{CoordError, Result};

/// Most workers listed for one queue. A Redis with thousands of clients
/// still sends its whole `CLIENT LIST` (Redis cannot filter it by name),
/// but only the first `MAX_WORKERS` matching connections of a queue (in
/// Redis's order: oldest connection first) are kept: a page showing this
/// many should say "at least".
pub const MAX_WORKERS: usize = 1000;

/// One BullMQ worker, seen as its named Redis connection in `CLIENT LIST`.
/// See the module documentation for what cannot be known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BullWorker {
    /// The connection's id (`CLIENT KILL ID` takes it).
    pub id: u64,
    /// The client's address (`ip:port`) as Redis sees it: behind NAT or a
    /// proxy, the last hop's.
    pub addr: String,
    /// The worker's `name` option, when it was given one.
    pub name: Option<String>,
    /// The full connection name, as `CLIENT LIST` shows it.
    pub client_name: String,
    /// How long the connection has been open, in seconds.
    pub age_secs: u64,
    /// Seconds since the connection's last command. A worker waiting for
    /// jobs repeats its `BZPOPMIN` every drain delay (5 s by default), so
    /// a long idle time while not blocked means a busy worker (every slot
    /// taken) or a stuck one.
    pub idle_secs: u64,
    /// Its last command (`bzpopmin` for a worker waiting for jobs).
    pub cmd: Option<String>,
    /// True while it is blocked in that command (flag `b`): it has a free
    /// slot and the queue had nothing ready for it.
    pub blocked: bool,
    /// The ACL user it is logged in as.
    pub user: Option<String>,
    /// The Redis client library it announced (`CLIENT SETINFO`), if any.
    pub lib_name: Option<String>,
    /// That library's version, if announced.
    pub lib_ver: Option<String>,
    /// On a cluster, the master (`host:port`) whose `CLIENT LIST` showed it.
    pub node: Option<String>,
}

/// Base64 (standard alphabet, padded) of `bytes`, as Node's
/// `Buffer.toString('base64')`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Recognises the connection names of the workers of several queues under
/// one prefix.
struct Matcher {
    /// `<prefix>:`.
    head: String,
    /// base64 of each queue name → its index.
    queues: HashMap<String, usize>,
}

impl Matcher {
    fn new<'a>(prefix: &str, queues: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            head: format!("{prefix}:"),
            queues: queues
                .into_iter()
                .enumerate()
                .map(|(i, q)| (base64(q.as_bytes()), i))
                .collect(),
        }
    }

    /// The queue index and worker name (`None` when unnamed) of a worker
    /// connection's name; `None` for any other connection (other prefix or
    /// queue, `QueueEvents`, unnamed clients). Base64 holds no `:`, so the
    /// queue part ends at the first `:` after the prefix.
    fn matches<'n>(&self, name: &'n str) -> Option<(usize, Option<&'n str>)> {
        let rest = name.strip_prefix(self.head.as_str())?;
        let (encoded, tail) = rest.split_at(rest.find(':').unwrap_or(rest.len()));
        let queue = *self.queues.get(encoded)?;
        if tail.is_empty() {
            return Some((queue, None));
        }
        let worker = tail.strip_prefix(":w:")?;
        Some((queue, (!worker.is_empty()).then_some(worker)))
    }
}

/// Adds the workers `text` (a `CLIENT LIST` answer) shows to `out` (one
/// list per queue of `matcher`, each kept to [`MAX_WORKERS`]). Lines
/// without a readable `id`, `addr`, `age` or `idle` are skipped; unknown
/// fields are ignored.
fn collect(text: &str, matcher: &Matcher, node: Option<&str>, out: &mut [Vec<BullWorker>]) {
    for line in text.lines() {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for pair in line.split_ascii_whitespace() {
            if let Some((key, value)) = pair.split_once('=') {
                fields.entry(key).or_insert(value);
            }
        }
        let Some(client_name) = fields.get("name").copied() else {
            continue;
        };
        let Some((queue, name)) = matcher.matches(client_name) else {
            continue;
        };
        let Some(list) = out.get_mut(queue) else {
            continue;
        };
        if list.len() >= MAX_WORKERS {
            continue;
        }
        let number = |key: &str| fields.get(key).and_then(|v| v.parse::<u64>().ok());
        let text = |key: &str| {
            fields
                .get(key)
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
        };
        let (Some(id), Some(addr), Some(age_secs), Some(idle_secs)) =
            (number("id"), text("addr"), number("age"), number("idle"))
        else {
            continue;
        };
        list.push(BullWorker {
            id,
            addr,
            name: name.map(str::to_owned),
            client_name: client_name.to_owned(),
            age_secs,
            idle_secs,
            cmd: text("cmd"),
            blocked: fields.get("flags").is_some_and(|f| f.contains('b')),
            user: text("user"),
            lib_name: text("lib-name"),
            lib_ver: text("lib-ver"),
            node: node.map(str::to_owned),
        });
    }
}

/// Sorts workers by address (as socket addresses when they parse, so
/// port 9000 comes before 10000), then by id.
fn sort(workers: &mut [BullWorker]) {
    workers.sort_by_cached_key(|w| {
        let parsed = w.addr.parse::<SocketAddr>().ok();
        (parsed.is_none(), parsed, w.addr.clone(), w.id)
    });
}

/// The workers of `queue` under `prefix` that one `CLIENT LIST` answer
/// shows, sorted by address, at most [`MAX_WORKERS`]. Malformed lines and
/// unknown fields are skipped; it never panics.
pub fn parse_client_list(text: &str, prefix: &str, queue: &str) -> Vec<BullWorker> {
    let mut out = vec![Vec::new()];
    collect(text, &Matcher::new(prefix, [queue]), None, &mut out);
    let mut workers = out.pop().unwrap_or_default();
    sort(&mut workers);
    workers
}

/// On a cluster a worker's connection is named on every node its client
/// talked to (each master, and replicas), so merging the nodes' lists
/// would count it several times. One node's list is kept: the master
/// serving the queue's `marker` key (`owner`), where the worker blocks
/// waiting for jobs, so its `cmd`, `blocked` and idle time mean something;
/// failing that (the owner unknown or not answering), the node showing the
/// most workers, as BullMQ's own `getWorkers` does.
fn pick_node(per_node: Vec<(String, Vec<BullWorker>)>, owner: Option<&str>) -> Vec<BullWorker> {
    if let Some(owner) = owner
        && let Some(found) = per_node.iter().position(|(node, _)| node == owner)
    {
        return per_node
            .into_iter()
            .nth(found)
            .map(|(_, w)| w)
            .unwrap_or_default();
    }
    per_node
        .into_iter()
        // Ties go to the first address, so the answer does not flicker.
        .min_by(|(a, wa), (b, wb)| wb.len().cmp(&wa.len()).then_with(|| a.cmp(b)))
        .map(|(_, workers)| workers)
        .unwrap_or_default()
}

/// A Redis that will not run `CLIENT LIST` (an ACL without
/// `+client|list`, or a managed service that disables `CLIENT`) says so
/// plainly; any other failure maps as usual.
fn client_list_error(e: RedisError) -> CoordError {
    let text = e.to_string().to_ascii_lowercase();
    let refused = matches!(e.kind(), ErrorKind::Server(ServerErrorKind::NoPerm))
        || e.code() == Some("NOPERM")
        || text.contains("unknown command")
        || text.contains("unknown subcommand");
    if refused {
        return CoordError::Unavailable(format!(
            "Redis refuses CLIENT LIST, so BullMQ workers cannot be listed \
             (the Redis user needs +client|list): {e}"
        ));
    }
    CoordError::from(e)
}

impl BullMq {
    /// The workers of `queue` connected now, sorted by address; at most
    /// [`MAX_WORKERS`]. One `CLIENT LIST TYPE normal` (on every master of
    /// a cluster). See [`BullMq::workers_by_queue`].
    pub async fn workers(&self, queue: &str) -> Result<Vec<BullWorker>> {
        let queues = [queue.to_owned()];
        Ok(self
            .workers_by_queue(&queues)
            .await?
            .remove(queue)
            .unwrap_or_default())
    }

    /// The workers of each of `queues` (every one of them a key, with an
    /// empty list when none is connected), from ONE `CLIENT LIST TYPE
    /// normal` (one per master on a cluster, plus `CLUSTER NODES`) however
    /// many queues are asked about. Each list is sorted by address and
    /// holds at most [`MAX_WORKERS`]; on a cluster it comes from one node
    /// (see `pick_node`), each worker naming it.
    ///
    /// A queue name this module refuses fails the call
    /// ([`CoordError::InvalidQueueName`]); a Redis refusing `CLIENT LIST`
    /// gives [`CoordError::Unavailable`] saying so.
    pub async fn workers_by_queue(
        &self,
        queues: &[String],
    ) -> Result<BTreeMap<String, Vec<BullWorker>>> {
        for queue in queues {
            check_queue(queue)?;
        }
        if queues.is_empty() {
            return Ok(BTreeMap::new());
        }
        let matcher = Matcher::new(&self.prefix, queues.iter().map(String::as_str));
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("LIST").arg("TYPE").arg("normal");
        let answers = conn.on_masters(&cmd).await.map_err(client_list_error)?;
        let cluster = conn.is_cluster();
        // Per node, per queue.
        let mut seen: Vec<(String, Vec<Vec<BullWorker>>)> = Vec::with_capacity(answers.len());
        for (node, value) in answers {
            let text: String = redis::from_redis_value(value).map_err(RedisError::from)?;
            let mut lists = vec![Vec::new(); queues.len()];
            collect(
                &text,
                &matcher,
                cluster.then_some(node.as_str()),
                &mut lists,
            );
            seen.push((node, lists));
        }
        let topology = if cluster {
            conn.topology().await.map_err(CoordError::from)?
        } else {
            None
        };
        let mut result = BTreeMap::new();
        for (i, queue) in queues.iter().enumerate() {
            let per_node: Vec<(String, Vec<BullWorker>)> = seen
                .iter_mut()
                .map(|(node, lists)| (node.clone(), std::mem::take(&mut lists[i])))
                .collect();
            let marker = self.key(queue, "marker");
            let owner = topology
                .as_ref()
                .and_then(|t| t.master_of(marker.as_bytes()))
                .map(|n| n.address.as_str());
            let mut workers = pick_node(per_node, owner);
            sort(&mut workers);
            result.insert(queue.clone(), workers);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Redis 7 prints them (trimmed of fields that do not matter).
    fn line(id: u64, addr: &str, name: &str, extra: &str) -> String {
        format!(
            "id={id} addr={addr} laddr=127.0.0.1:6379 fd=9 name={name} age=12 idle=3 \
             flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=20474 argv-mem=25 \
             multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22321 events=r \
             cmd=bzpopmin user=default redir=-1 resp=2{extra}\r\n"
        )
    }

    #[test]
    fn base64_is_node_s() {
        for (text, encoded) in [
            ("", ""),
            ("a", "YQ=="),
            ("ab", "YWI="),
            ("abc", "YWJj"),
            ("mail", "bWFpbA=="),
            ("q/é+", "cS/DqSs="),
            ("\u{fb}\u{ff}", "w7vDvw=="),
        ] {
            assert_eq!(base64(text.as_bytes()), encoded, "{text:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn workers_named_and_unnamed_are_listed_and_nothing_else() {
        let text = [
            line(7, "10.0.0.2:40000", "bull:bWFpbA==", ""),
            line(
                8,
                "10.0.0.1:50000",
                "bull:bWFpbA==:w:resizer-1",
                " lib-name=ioredis lib-ver=5.4.1",
            ),
            // QueueEvents of the same queue.
            line(9, "10.0.0.3:1", "bull:bWFpbA==:qe", ""),
            // Another queue ("mails"), another prefix, a bare prefix.
            line(10, "10.0.0.3:2", "bull:bWFpbHM=", ""),
            line(11, "10.0.0.3:3", "other:bWFpbA==", ""),
            line(12, "10.0.0.3:4", "bull", ""),
            line(13, "10.0.0.3:5", "bull:", ""),
            // Something else after the queue.
            line(14, "10.0.0.3:6", "bull:bWFpbA==:x:y", ""),
            // Anonymous clients.
            line(15, "10.0.0.3:7", "", ""),
        ]
        .concat();
        let workers = parse_client_list(&text, "bull", "mail");
        assert_eq!(workers.len(), 2, "{workers:?}");
        let named = &workers[0];
        assert_eq!(named.addr, "10.0.0.1:50000");
        assert_eq!(named.id, 8);
        assert_eq!(named.name.as_deref(), Some("resizer-1"));
        assert_eq!(named.client_name, "bull:bWFpbA==:w:resizer-1");
        assert_eq!((named.age_secs, named.idle_secs), (12, 3));
        assert_eq!(named.cmd.as_deref(), Some("bzpopmin"));
        assert!(named.blocked);
        assert_eq!(named.user.as_deref(), Some("default"));
        assert_eq!(named.lib_name.as_deref(), Some("ioredis"));
        assert_eq!(named.lib_ver.as_deref(), Some("5.4.1"));
        assert_eq!(named.node, None);
        let unnamed = &workers[1];
        assert_eq!((unnamed.id, unnamed.name.as_deref()), (7, None));
        assert_eq!(unnamed.lib_name, None);
        assert!(parse_client_list(&text, "bull", "mails").len() == 1);
        assert!(parse_client_list(&text, "bul", "mail").is_empty());
        assert!(parse_client_list("", "bull", "mail").is_empty());
    }

    #[test]
    fn queue_names_with_plus_slash_and_padding_and_tagged_prefixes() {
        // base64("q/é+") = "cS/DqSs=": '/', '+' and '=' all in it.
        let text = [
            line(1, "127.0.0.1:38326", "{exp}:cS/DqSs=:w:resizer-1", ""),
            line(2, "127.0.0.1:38327", "{exp}:cS/DqSs=", ""),
            line(3, "127.0.0.1:38328", "{exp}:cS/DqSs", ""),
        ]
        .concat();
        let workers = parse_client_list(&text, "{exp}", "q/é+");
        let ids: Vec<u64> = workers.iter().map(|w| w.id).collect();
        assert_eq!(ids, vec![1, 2]);
        // A worker name holding ':' keeps it.
        let text = line(4, "127.0.0.1:1", "p:a:b:YQ==:w:host:1", "");
        let workers = parse_client_list(&text, "p:a:b", "a");
        assert_eq!(workers[0].name.as_deref(), Some("host:1"));
    }

    #[test]
    fn malformed_lines_and_unknown_fields_are_skipped() {
        let good = line(
            5,
            "127.0.0.1:9000",
            "bull:YQ==",
            " future-field=1 =odd junk",
        );
        let text = format!(
            "garbage without equals\n\
             id=x addr=1.2.3.4:5 name=bull:YQ== age=1 idle=1\n\
             id=6 name=bull:YQ== age=1 idle=1\n\
             id=7 addr=1.2.3.4:5 name=bull:YQ== age=-1 idle=1\n\
             id=8 addr=1.2.3.4:5 age=1 idle=1\n\
             name=bull:YQ==\n\
             \n\
             {good}\
             id=9 addr=[::1]:10000 name=bull:YQ== age=1 idle=2 flags=N\n\
             id=10 addr=/tmp/redis.sock:0 name=bull:YQ== age=1 idle=2\n\
             id=11 addr=127.0.0.1:10000 name=bull:YQ== age=1 idle=2"
        );
        let workers = parse_client_list(&text, "bull", "a");
        let ids: Vec<u64> = workers.iter().map(|w| w.id).collect();
        // Sorted by socket address (9000 before 10000, IPv4 before IPv6),
        // anything else after.
        assert_eq!(ids, vec![5, 11, 9, 10], "{workers:?}");
        assert!(!workers[2].blocked);
        assert_eq!(workers[2].cmd, None);
        // Hostile bytes never panic.
        for text in [
            "=",
            "name=",
            "name==",
            "id==1",
            "\u{0}=\u{0}",
            "é=é name=bull:é",
        ] {
            assert!(parse_client_list(text, "bull", "a").is_empty());
        }
    }

    #[test]
    fn lists_are_capped() {
        let text: String = (0..MAX_WORKERS as u64 + 50)
            .map(|i| line(i, &format!("10.0.0.1:{}", 1000 + i), "bull:YQ==", ""))
            .collect();
        let workers = parse_client_list(&text, "bull", "a");
        assert_eq!(workers.len(), MAX_WORKERS);
        assert_eq!(workers.last().map(|w| w.id), Some(MAX_WORKERS as u64 - 1));
    }

    #[test]
    fn one_read_is_split_among_queues() {
        let text = [
            line(1, "10.0.0.1:1", "bull:YQ==", ""),
            line(2, "10.0.0.1:2", "bull:Yg==:w:x", ""),
            line(3, "10.0.0.1:3", "bull:YQ==:w:y", ""),
        ]
        .concat();
        let matcher = Matcher::new("bull", ["a", "b", "c"]);
        let mut out = vec![Vec::new(); 3];
        collect(&text, &matcher, Some("n:1"), &mut out);
        let ids: Vec<Vec<u64>> = out
            .iter()
            .map(|l| l.iter().map(|w| w.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3], vec![2], vec![]]);
        assert_eq!(out[1][0].node.as_deref(), Some("n:1"));
    }

    #[test]
    fn on_a_cluster_one_node_is_kept() {
        let worker =
            |id: u64| parse_client_list(&line(id, "1.1.1.1:1", "bull:YQ==", ""), "bull", "a");
        let two = [worker(1), worker(2)].concat();
        let per_node = || {
            vec![
                ("b:2".to_owned(), worker(3)),
                ("a:1".to_owned(), worker(4)),
                ("c:3".to_owned(), two.clone()),
            ]
        };
        let ids = |w: Vec<BullWorker>| w.into_iter().map(|w| w.id).collect::<Vec<_>>();
        assert_eq!(ids(pick_node(per_node(), Some("b:2"))), vec![3]);
        assert_eq!(ids(pick_node(per_node(), Some("gone:1"))), vec![1, 2]);
        assert_eq!(ids(pick_node(per_node(), None)), vec![1, 2]);
        let tie = vec![("b:2".to_owned(), worker(3)), ("a:1".to_owned(), worker(4))];
        assert_eq!(ids(pick_node(tie, None)), vec![4]);
        assert!(pick_node(Vec::new(), None).is_empty());
    }
}
