//! The Redis page (`/redis`): the Redis every capability depends on, node
//! by node (every master and replica of a cluster), with what an operator
//! checks first — memory against `maxmemory`, evictions, blocked clients,
//! replication and persistence — then the slow log, latency events, and
//! which key prefixes hold the memory (a sample, said to be one).
//!
//! Commands in the slow log are the services' own (keys, values), so they
//! are only ever text, which leptos escapes, and arrive truncated.

use leptos::prelude::*;

use crate::format::{counted, format_bytes, format_count, format_window};
use crate::vm::redis::{KeyspaceVm, LatencyEventRow, RedisNodeRow, RedisVm, SLOWLOG_ROWS, SlowRow};
use crate::vm::session::PageCtx;
use crate::widgets::shell::{Fragment, Frame, Region, Section, document, fragment};
use crate::widgets::table::{Empty, Table};
use crate::widgets::time::{At, Moment};

/// The live stream of the Redis page.
pub const REDIS_EVENTS: &str = "/events/redis";

/// The Redis page: the nodes, the slow log, latency events and the key
/// space, each a live region.
pub fn render_redis_page(vm: &RedisVm, page: &PageCtx) -> String {
    let vm = vm.clone();
    let frame = Frame::new("Redis · Switchyard", Section::Redis)
        .live(REDIS_EVENTS)
        .reloading();
    document(page, frame, move || {
        view! {
            <section class="redis-page">
                <h1>"Redis"</h1>
                <NodesRegion vm=vm.clone() />
                <h2>"Slow log"</h2>
                <SlowlogRegion rows=vm.slowlog.clone() now=vm.read_at />
                <h2>"Latency events"</h2>
                <LatencyRegion rows=vm.latency.clone() now=vm.read_at />
                <h2>"Memory by key prefix"</h2>
                <KeyspaceRegion keyspace=vm.keyspace.clone() />
            </section>
        }
    })
}

/// The live regions of the Redis page.
pub fn redis_fragments(vm: &RedisVm) -> Vec<Fragment> {
    vec![
        fragment("redis-nodes", view! { <NodesRegion vm=vm.clone() /> }),
        fragment(
            "redis-slowlog",
            view! { <SlowlogRegion rows=vm.slowlog.clone() now=vm.read_at /> },
        ),
        fragment(
            "redis-latency",
            view! { <LatencyRegion rows=vm.latency.clone() now=vm.read_at /> },
        ),
        fragment(
            "redis-keyspace",
            view! { <KeyspaceRegion keyspace=vm.keyspace.clone() /> },
        ),
    ]
}

/// A ratio as a percentage with one decimal (`97.3%`).
fn percent(value: f64) -> String {
    format!("{value:.1}%")
}

/// Every node, or why none could be read.
#[component]
fn NodesRegion(vm: RedisVm) -> impl IntoView {
    let body = if !vm.configured {
        view! {
            <Empty test_id="redis-off">
                "No Redis is configured: the embedded deployment keeps everything in SQLite. Start with "
                <code>"--redis"</code> " (or " <code>"--bullmq"</code> ") to see it here."
            </Empty>
        }
        .into_any()
    } else if let Some(problem) = vm.problem.clone() {
        view! {
            <p class="status down" role="alert" data-test-id="redis-problem">
                <span class="dot" aria-hidden="true"></span>
                {format!("Redis could not be read: {problem}")}
            </p>
        }
        .into_any()
    } else {
        let summary = format!(
            "{} · {} · read {}",
            counted(
                vm.nodes.iter().filter(|n| n.role == "master").count() as u64,
                "master",
                "masters"
            ),
            counted(
                vm.nodes.iter().filter(|n| n.role == "replica").count() as u64,
                "replica",
                "replicas"
            ),
            crate::format::format_timestamp(vm.read_at),
        );
        view! {
            <p class="muted" data-test-id="redis-summary">
                {summary}
            </p>
            <NodesTable nodes=vm.nodes.clone() />
        }
        .into_any()
    };
    view! { <Region id="redis-nodes">{body}</Region> }
}

#[component]
fn NodesTable(nodes: Vec<RedisNodeRow>) -> impl IntoView {
    view! {
        <Table
            class="redis-nodes"
            test_id="redis-nodes-table"
            head={view! {
                <tr>
                    <th scope="col">"Node"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col" class="num">
                        "Memory"
                    </th>
                    <th scope="col" class="num">
                        "Clients"
                    </th>
                    <th scope="col" class="num">
                        "Ops/s"
                    </th>
                    <th scope="col" class="num">
                        "Hit ratio"
                    </th>
                    <th scope="col" class="num">
                        <abbr title="keys evicted · expired per second">"Evicted · expired /s"</abbr>
                    </th>
                    <th scope="col">"Replication"</th>
                    <th scope="col">"Persistence"</th>
                    <th scope="col">"Version · uptime"</th>
                </tr>
            }}
        >
            {nodes.into_iter().map(|node| view! { <NodeRow node /> }).collect_view()}
        </Table>
    }
}

/// One node's row; one that did not answer says why and nothing else.
#[component]
fn NodeRow(node: RedisNodeRow) -> impl IntoView {
    let addr = node.addr.clone();
    let id = node.addr.clone();
    if let Some(error) = node.error.clone() {
        return view! {
            <tr data-test-id="redis-node" data-id=id class="attention">
                <th scope="row">
                    <code>{addr}</code>
                </th>
                <td colspan="9" data-test-id="redis-node-error">
                    <span class="badge down">"unreachable"</span>
                    " "
                    {error}
                </td>
            </tr>
        }
        .into_any();
    }
    let memory_percent = node.memory_percent();
    let memory_warning = memory_percent.is_some_and(|p| p >= 90.0);
    let memory = match (node.max_memory.filter(|m| *m > 0), memory_percent) {
        (Some(max), Some(p)) => format!(
            "{} of {} ({}) · {}",
            format_bytes(node.used_memory),
            format_bytes(max),
            percent(p),
            node.policy
        ),
        _ => format!("{} · no maxmemory", format_bytes(node.used_memory)),
    };
    let memory_title = format!(
        "peak {}{}",
        format_bytes(node.peak_memory),
        node.fragmentation
            .map(|f| format!(" · fragmentation {f:.2}"))
            .unwrap_or_default()
    );
    let rate = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.1}"));
    let evicting = node.evicted_per_sec.is_some_and(|r| r > 0.0);
    view! {
        <tr data-test-id="redis-node" data-id=id>
            <th scope="row">
                <code>{addr}</code>
                {node.ping_ms.map(|ms| view! { <span class="muted block">{format!("ping {ms:.1} ms")}</span> })}
            </th>
            <td data-test-id="redis-role">
                <span class=format!("badge role-{}", node.role)>{node.role.clone()}</span>
            </td>
            <td
                class=if memory_warning { "num flagged" } else { "num" }
                title=memory_title
                data-test-id="redis-memory"
            >
                {memory}
            </td>
            <td class="num" data-test-id="redis-clients">
                {format_count(node.clients)}
                {(node.blocked > 0)
                    .then(|| {
                        view! {
                            <span class="muted block" data-test-id="redis-blocked">
                                {format!("{} blocked", format_count(node.blocked))}
                            </span>
                        }
                    })}
            </td>
            <td class="num" data-test-id="redis-ops">
                {format_count(node.ops_per_sec)}
            </td>
            <td class="num" data-test-id="redis-hit-ratio">
                {node.hit_ratio.map_or_else(|| "–".to_owned(), |r| percent(r * 100.0))}
            </td>
            <td
                class=if evicting { "num flagged" } else { "num" }
                data-test-id="redis-evictions"
            >
                {format!("{} · {}", rate(node.evicted_per_sec), rate(node.expired_per_sec))}
            </td>
            <td
                class=if node.replication_warning { "flagged" } else { "" }
                data-test-id="redis-replication"
            >
                {node.replication.clone()}
            </td>
            <td
                class=if node.persistence_warning { "flagged" } else { "" }
                data-test-id="redis-persistence"
            >
                {node.persistence.clone()}
            </td>
            <td data-test-id="redis-version">
                {format!(
                    "{} · up {}",
                    node.version,
                    format_window(i64::try_from(node.uptime_secs).unwrap_or(i64::MAX).saturating_mul(1000)),
                )}
            </td>
        </tr>
    }
    .into_any()
}

/// The slowest recent commands, newest first.
#[component]
fn SlowlogRegion(rows: Vec<SlowRow>, now: i64) -> impl IntoView {
    let body = if rows.is_empty() {
        view! {
            <Empty test_id="slowlog-empty">
                "No command was slower than the slow log's threshold (slowlog-log-slower-than)."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="slowlog"
                test_id="slowlog-table"
                head={view! {
                    <tr>
                        <th scope="col">"When"</th>
                        <th scope="col" class="num">
                            "Took"
                        </th>
                        <th scope="col">"Command"</th>
                        <th scope="col">"Client"</th>
                        <th scope="col">"Node"</th>
                    </tr>
                }}
            >
                {rows
                    .into_iter()
                    .take(SLOWLOG_ROWS)
                    .map(|row| {
                        view! {
                            <tr data-test-id="slowlog-row">
                                <td>
                                    <Moment at=row.at_ms now />
                                </td>
                                <td class="num" data-test-id="slowlog-took">
                                    {format!("{:.1} ms", row.micros as f64 / 1000.0)}
                                </td>
                                <td>
                                    <code class="command" data-test-id="slowlog-command">
                                        {row.command}
                                    </code>
                                </td>
                                <td>{row.client}</td>
                                <td>
                                    <code>{row.node}</code>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    view! { <Region id="redis-slowlog">{body}</Region> }
}

/// `LATENCY LATEST` over every node.
#[component]
fn LatencyRegion(rows: Vec<LatencyEventRow>, now: i64) -> impl IntoView {
    let body = if rows.is_empty() {
        view! {
            <Empty test_id="latency-events-empty">
                "No latency event recorded (latency-monitor-threshold is off, or nothing crossed it)."
            </Empty>
        }
        .into_any()
    } else {
        view! {
            <Table
                class="latency-events"
                test_id="latency-events-table"
                head={view! {
                    <tr>
                        <th scope="col">"Event"</th>
                        <th scope="col">"Last"</th>
                        <th scope="col" class="num">
                            "Latest"
                        </th>
                        <th scope="col" class="num">
                            "Worst"
                        </th>
                        <th scope="col">"Node"</th>
                    </tr>
                }}
            >
                {rows
                    .into_iter()
                    .map(|row| {
                        view! {
                            <tr data-test-id="latency-event">
                                <th scope="row">{row.event}</th>
                                <td>
                                    <Moment at=row.at_ms now />
                                </td>
                                <td class="num">{format!("{} ms", row.latest_ms)}</td>
                                <td class="num">{format!("{} ms", row.max_ms)}</td>
                                <td>
                                    <code>{row.node}</code>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </Table>
        }
        .into_any()
    };
    view! { <Region id="redis-latency">{body}</Region> }
}

/// Memory by key prefix, from a sample, extrapolated and said to be so.
#[component]
fn KeyspaceRegion(keyspace: Option<KeyspaceVm>) -> impl IntoView {
    let body = match keyspace {
        None => view! {
            <Empty test_id="keyspace-pending">"The key space has not been sampled yet."</Empty>
        }
        .into_any(),
        Some(ks) => {
            let note = format!(
                "A sample of {} of {} keys (SCAN and MEMORY USAGE), extrapolated; taken ",
                format_count(ks.sampled),
                format_count(ks.total),
            );
            view! {
                <p class="legend" data-test-id="keyspace-sample">
                    {note}
                    <At at=ks.at_ms />
                    "."
                </p>
                <Table
                    class="keyspace"
                    test_id="keyspace-table"
                    head={view! {
                        <tr>
                            <th scope="col">"Prefix"</th>
                            <th scope="col" class="num">
                                "Keys (est.)"
                            </th>
                            <th scope="col" class="num">
                                "Memory (est.)"
                            </th>
                            <th scope="col" class="num">
                                "Share"
                            </th>
                        </tr>
                    }}
                >
                    {ks
                        .prefixes
                        .into_iter()
                        .map(|row| {
                            let id = row.prefix.clone();
                            view! {
                                <tr data-test-id="keyspace-prefix" data-id=id>
                                    <th scope="row">
                                        <code>{row.prefix}</code>
                                    </th>
                                    <td class="num">{format!("~{}", format_count(row.keys))}</td>
                                    <td class="num">{format!("~{}", format_bytes(row.bytes))}</td>
                                    <td class="num">{percent(row.percent)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </Table>
            }
            .into_any()
        }
    };
    view! { <Region id="redis-keyspace">{body}</Region> }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::vm::redis::PrefixRow;

    fn redis_vm() -> RedisVm {
        let master = RedisNodeRow {
            addr: "10.0.0.1:6379".into(),
            role: "master".into(),
            version: "7.2.4".into(),
            uptime_secs: 86_400,
            ping_ms: Some(0.4),
            used_memory: 950 * 1024 * 1024,
            peak_memory: 990 * 1024 * 1024,
            max_memory: Some(1024 * 1024 * 1024),
            policy: "allkeys-lru".into(),
            clients: 40,
            blocked: 3,
            ops_per_sec: 12_000,
            hit_ratio: Some(0.973),
            evicted_per_sec: Some(12.5),
            expired_per_sec: Some(0.0),
            replication: "1 replica".into(),
            persistence: "RDB ok · AOF off".into(),
            ..RedisNodeRow::default()
        };
        let gone = RedisNodeRow {
            addr: "10.0.0.2:6379".into(),
            error: Some("unreachable: connection refused".into()),
            ..RedisNodeRow::default()
        };
        RedisVm {
            configured: true,
            nodes: vec![master, gone],
            slowlog: vec![SlowRow {
                node: "10.0.0.1:6379".into(),
                id: 7,
                at_ms: MINUTE0,
                micros: 52_000,
                command: format!("SET k {HOSTILE}…"),
                client: "api (10.0.0.9:5000)".into(),
            }],
            latency: vec![LatencyEventRow {
                node: "10.0.0.1:6379".into(),
                event: "command".into(),
                at_ms: MINUTE0,
                latest_ms: 52,
                max_ms: 80,
            }],
            keyspace: Some(KeyspaceVm {
                sampled: 1_000,
                total: 250_000,
                at_ms: MINUTE0,
                prefixes: vec![PrefixRow {
                    prefix: "bull".into(),
                    keys: 200_000,
                    bytes: 800 * 1024 * 1024,
                    percent: 84.2,
                }],
            }),
            problem: None,
            read_at: MINUTE0 + 5_000,
        }
    }

    #[test]
    fn nodes_flag_what_needs_a_look_and_an_unreachable_one_says_why() {
        let html = render_redis_page(&redis_vm(), &PAGE);
        assert!(html.contains("<title>Redis · Switchyard</title>"), "{html}");
        assert!(html.contains(r#"data-live="/events/redis""#), "{html}");
        let memory = element(&html, r#"data-test-id="redis-memory""#, "</td>");
        assert!(memory.contains("(92.8%) · allkeys-lru"), "{memory}");
        assert!(memory.contains("flagged"), "{memory}");
        assert!(html.contains("3 blocked"), "{html}");
        let evictions = element(&html, r#"data-test-id="redis-evictions""#, "</td>");
        assert!(
            evictions.contains("flagged") && evictions.contains("12.5"),
            "{evictions}"
        );
        assert!(html.contains("unreachable: connection refused"), "{html}");
        assert!(html.contains("1 master · 0 replicas"), "{html}");
    }

    #[test]
    fn slow_commands_are_escaped_and_the_sample_says_it_is_one() {
        let html = render_redis_page(&redis_vm(), &PAGE);
        assert!(!html.contains(HOSTILE), "{html}");
        assert!(html.contains("52.0 ms"), "{html}");
        assert!(html.contains("A sample of 1,000 of 250,000 keys"), "{html}");
        assert!(
            html.contains("~800.0 MB") || html.contains("~800 MB"),
            "{html}"
        );
    }

    #[test]
    fn the_fragments_are_the_regions_of_the_page() {
        for vm in [redis_vm(), RedisVm::default()] {
            let html = render_redis_page(&vm, &PAGE);
            for f in redis_fragments(&vm) {
                assert!(html.contains(&f.html), "{} differs from the page", f.id);
            }
        }
        let off = render_redis_page(&RedisVm::default(), &PAGE);
        assert!(off.contains("No Redis is configured"), "{off}");
    }
}
