//! The Redis page's reader against real servers: private `redis-server`s
//! (small `maxmemory`, slow commands, a killed server) and the shared
//! cluster.

use std::time::Duration;

use coord::redis_health::{
    GroupKind, HealthOptions, NodeError, NodeRole, ReadOptions, RedisHealth, RedisReport,
    SampleOptions, Status, slowlog::MAX_ARG_CHARS, slowlog::TRUNCATED,
};
use test_support::redis::{PrivateCluster, PrivateRedis, cluster_url, free_port};

async fn private(extra: &[&str]) -> PrivateRedis {
    let server = PrivateRedis::start_with(free_port(), extra, None);
    server.ready().await;
    server
}

async fn conn(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect to the private Redis")
}

/// Runs one command whose answer does not matter.
async fn run(conn: &mut redis::aio::MultiplexedConnection, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async::<redis::Value>(conn)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

/// `count` keys `<prefix>:<i>` of `size` bytes, in pipelines of 50.
async fn fill(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    count: usize,
    size: usize,
) {
    let value = vec![b'v'; size];
    for start in (0..count).step_by(50) {
        let mut pipe = redis::pipe();
        for i in start..(start + 50).min(count) {
            pipe.cmd("SET")
                .arg(format!("{prefix}:{i}"))
                .arg(&value)
                .ignore();
        }
        let () = pipe.query_async(conn).await.expect("SET");
    }
}

async fn read(url: &str) -> RedisReport {
    RedisHealth::new(url)
        .expect("reader")
        .read(&ReadOptions::default())
        .await
}

#[tokio::test]
async fn memory_and_evictions_are_read_from_a_full_server() {
    let server = private(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]).await;
    let mut c = conn(&server.url()).await;
    let reader = RedisHealth::new(&server.url()).expect("reader");
    let before = reader.read(&ReadOptions::default()).await;
    fill(&mut c, "fill", 400, 10_000).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = reader.read(&ReadOptions::default()).await;

    assert!(!report.cluster);
    assert_eq!(report.status, Status::Ok, "{:?}", report.reasons);
    assert_eq!(report.nodes.len(), 1);
    let node = &report.nodes[0];
    assert!(node.reachable, "{:?}", node.error);
    assert_eq!(node.address, format!("127.0.0.1:{}", server.port()));
    assert_eq!(node.role, Some(NodeRole::Master));
    assert!(node.ping_us.is_some());
    let info = node.info.as_ref().expect("INFO read");
    assert!(
        info.version.as_deref().is_some_and(|v| v.starts_with('7')),
        "{info:?}"
    );
    assert_eq!(info.maxmemory, Some(2 * 1024 * 1024));
    assert_eq!(info.maxmemory_policy.as_deref(), Some("allkeys-lru"));
    assert!(info.evicted_keys.is_some_and(|n| n > 0), "{info:?}");
    let used = info.used_memory.expect("used memory");
    assert!(used > 1024 * 1024, "{used}");
    assert!(info.used_memory_peak.is_some_and(|peak| peak >= used));
    let share = info.memory_share().expect("a limit is set");
    assert!(share > 0.5 && share < 1.5, "{share}");
    assert!(info.fragmentation_ratio.is_some());
    assert!(info.connected_clients.is_some_and(|n| n >= 2));
    assert_eq!(info.blocked_clients, Some(0));
    assert!(info.uptime_secs.is_some());
    assert!(info.ops_per_sec.is_some());
    assert_eq!(
        info.persistence.rdb_last_bgsave_status.as_deref(),
        Some("ok")
    );
    assert_eq!(info.persistence.aof_enabled, Some(false));
    assert_eq!(info.connected_replicas, Some(0));
    assert!(info.total_keys() < 400, "evicted keys are gone");
    assert!(node.slowlog.is_some() && node.latency.is_some());
    assert!(node.problems.is_empty(), "{:?}", node.problems);
    assert!(
        node.keyspace.is_none() && report.keyspace.is_none(),
        "not asked"
    );

    let rates = node.rates_since(&before.nodes[0]).expect("two reads");
    assert!(rates.evicted_per_sec.is_some_and(|r| r > 0.0), "{rates:?}");
    assert!(rates.commands_per_sec.is_some_and(|r| r > 0.0), "{rates:?}");

    let summary = report.summary();
    assert_eq!(summary.status, Status::Ok);
    assert!(summary.nodes[0].reachable);
}

#[tokio::test]
async fn slow_commands_are_in_the_slow_log_with_cut_arguments() {
    let server = private(&[
        "--enable-debug-command",
        "yes",
        "--slowlog-log-slower-than",
        "1000",
    ])
    .await;
    let mut c = conn(&server.url()).await;
    run(&mut c, &["CLIENT", "SETNAME", "slow-client"]).await;
    run(&mut c, &["DEBUG", "SLEEP", "0.05"]).await;
    // Every command from here on, so that a long argument is logged.
    run(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await;
    let long = format!("{}\u{1b}end", "x".repeat(300));
    run(&mut c, &["SET", "svc:long", &long]).await;

    let report = read(&server.url()).await;
    let slowlog = report.nodes[0].slowlog.as_ref().expect("slow log read");
    assert!(slowlog.len() <= 20);
    let sleep = slowlog
        .iter()
        .find(|e| e.command == "DEBUG")
        .unwrap_or_else(|| panic!("DEBUG SLEEP in {slowlog:?}"));
    assert!(sleep.duration_us >= 50_000, "{sleep:?}");
    assert_eq!(sleep.args, ["SLEEP", "0.05"]);
    assert_eq!(sleep.client_name.as_deref(), Some("slow-client"));
    assert!(
        sleep
            .client_addr
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert!(sleep.time_secs > 1_700_000_000);
    assert!(!sleep.truncated);
    let set = slowlog
        .iter()
        .find(|e| e.command == "SET")
        .unwrap_or_else(|| panic!("SET in {slowlog:?}"));
    assert!(set.truncated, "{set:?}");
    assert_eq!(set.args[0], "svc:long");
    assert_eq!(set.args[1].chars().count(), MAX_ARG_CHARS);
    assert!(set.args[1].ends_with(TRUNCATED), "{set:?}");
    assert!(set.line.starts_with("SET svc:long xxx"), "{}", set.line);
    // Newest first.
    assert!(slowlog.windows(2).all(|w| w[0].id > w[1].id));
}

#[tokio::test]
async fn latency_latest_shows_a_spike() {
    let server = private(&["--enable-debug-command", "yes"]).await;
    let mut c = conn(&server.url()).await;
    run(
        &mut c,
        &["CONFIG", "SET", "latency-monitor-threshold", "10"],
    )
    .await;
    run(&mut c, &["DEBUG", "SLEEP", "0.05"]).await;
    let report = read(&server.url()).await;
    let latency = report.nodes[0]
        .latency
        .as_ref()
        .expect("LATENCY LATEST read");
    let command = latency
        .iter()
        .find(|e| e.event == "command")
        .unwrap_or_else(|| panic!("a command spike in {latency:?}"));
    assert!(
        command.latest_ms >= 50 && command.max_ms >= command.latest_ms,
        "{command:?}"
    );
    assert!(command.latest_secs > 1_700_000_000);
}

#[tokio::test]
async fn the_key_space_is_sampled_by_prefix_and_says_so() {
    let server = private(&[]).await;
    let mut c = conn(&server.url()).await;
    fill(&mut c, "svc-a", 50, 20_000).await;
    fill(&mut c, "svc-b", 300, 10).await;
    run(&mut c, &["SET", "loose", "1"]).await;
    let reader = RedisHealth::new(&server.url()).expect("reader");

    let small = SampleOptions {
        max_keys: 100,
        scan_count: 50,
        budget: Duration::from_secs(5),
        ..SampleOptions::default()
    };
    let report = reader
        .read(&ReadOptions {
            keyspace: Some(small),
        })
        .await;
    let sample = report.nodes[0].keyspace.as_ref().expect("sampled");
    assert!(sample.is_sample);
    assert_eq!(sample.db_keys, 351);
    assert!(sample.sampled > 0 && sample.sampled <= 100, "{sample:?}");
    let biggest = &sample.groups[0];
    assert_eq!(
        (biggest.kind, biggest.prefix.as_str()),
        (GroupKind::Prefix, "svc-a")
    );
    let estimated: u64 = sample.groups.iter().map(|g| g.estimated_keys).sum();
    assert!(estimated.abs_diff(351) <= 3, "{estimated}");
    assert_eq!(
        report.keyspace.as_ref().map(|k| k.sampled),
        Some(sample.sampled)
    );

    let report = reader
        .read(&ReadOptions {
            keyspace: Some(SampleOptions {
                budget: Duration::from_secs(5),
                ..SampleOptions::default()
            }),
        })
        .await;
    let whole = report.keyspace.as_ref().expect("sampled");
    assert!(!whole.is_sample, "every key measured");
    assert_eq!((whole.db_keys, whole.sampled), (351, 351));
    let group = |prefix: &str| {
        whole
            .groups
            .iter()
            .find(|g| g.prefix == prefix && g.kind == GroupKind::Prefix)
            .unwrap_or_else(|| panic!("{prefix} in {whole:?}"))
    };
    assert_eq!(group("svc-a").estimated_keys, 50);
    assert_eq!(group("svc-b").estimated_keys, 300);
    assert!(group("svc-a").estimated_bytes > 50 * 20_000);
    assert!(group("svc-b").estimated_bytes < group("svc-a").estimated_bytes / 10);
    assert!(
        whole
            .groups
            .iter()
            .any(|g| g.kind == GroupKind::NoSeparator && g.estimated_keys == 1)
    );
}

#[tokio::test]
async fn on_the_cluster_every_master_and_replica_is_read() {
    let reader = RedisHealth::new(&cluster_url()).expect("reader");
    let sample = SampleOptions {
        max_keys: 50,
        ..SampleOptions::default()
    };
    let report = reader
        .read(&ReadOptions {
            keyspace: Some(sample),
        })
        .await;
    assert!(report.cluster);
    assert_eq!(report.status, Status::Ok, "{:?}", report.reasons);
    let masters: Vec<&str> = report
        .nodes
        .iter()
        .filter(|n| n.role == Some(NodeRole::Master))
        .map(|n| n.address.as_str())
        .collect();
    let replicas: Vec<_> = report
        .nodes
        .iter()
        .filter(|n| n.role == Some(NodeRole::Replica))
        .collect();
    assert_eq!(
        (masters.len(), replicas.len()),
        (3, 3),
        "{:?}",
        report.nodes
    );
    for node in &report.nodes {
        assert!(node.reachable, "{}: {:?}", node.address, node.error);
        let info = node.info.as_ref().expect("INFO");
        assert_eq!(info.cluster_enabled, Some(true));
        assert_eq!(info.role, node.role);
        assert!(node.slowlog.is_some() && node.latency.is_some());
    }
    for master in report
        .nodes
        .iter()
        .filter(|n| n.role == Some(NodeRole::Master))
    {
        assert!(master.keyspace.is_some(), "masters are sampled");
        assert!(master.info.as_ref().and_then(|i| i.connected_replicas) >= Some(1));
    }
    for replica in &replicas {
        let master = replica.master.as_deref().expect("its master");
        assert!(masters.contains(&master), "{master} in {masters:?}");
        let lag = replica.replication.as_ref().expect("replication read");
        assert_eq!(lag.link_up, Some(true));
        assert!(lag.offset_behind.is_some(), "{lag:?}");
        assert!(replica.keyspace.is_none(), "replicas are not sampled");
    }
    assert!(report.keyspace.is_some());

    let summary = reader.health().await;
    assert_eq!(summary.status, Status::Ok, "{:?}", summary.reasons);
    assert_eq!(summary.nodes.len(), 6);
    assert!(
        summary
            .nodes
            .iter()
            .all(|n| n.reachable && n.ping_us.is_some())
    );
}

#[tokio::test]
async fn a_killed_server_reads_as_unreachable_and_back_after_a_restart() {
    let mut server = private(&[]).await;
    let port = server.port();
    let reader = RedisHealth::with_options(
        &server.url(),
        HealthOptions {
            timeout: Duration::from_millis(500),
            ..HealthOptions::default()
        },
    )
    .expect("reader");
    assert!(reader.read(&ReadOptions::default()).await.nodes[0].reachable);

    server.stop();
    for _ in 0..2 {
        let report = reader
            .read(&ReadOptions {
                keyspace: Some(SampleOptions::default()),
            })
            .await;
        assert_eq!(report.status, Status::Down);
        let node = &report.nodes[0];
        assert!(!node.reachable);
        assert!(
            node.error.as_ref().is_some_and(|e| e.is_outage()),
            "{:?}",
            node.error
        );
        assert!(node.info.is_none() && node.keyspace.is_none());
        assert!(!report.reasons.is_empty());
        let summary = reader.health().await;
        assert_eq!(summary.status, Status::Down);
        assert!(!summary.nodes[0].reachable);
    }

    let nobody = RedisHealth::new(&format!("redis://127.0.0.1:{}", free_port())).expect("reader");
    assert!(!nobody.health().await.nodes[0].reachable);

    let server = PrivateRedis::start(port);
    server.ready().await;
    let report = reader.read(&ReadOptions::default()).await;
    assert_eq!(report.status, Status::Ok, "{:?}", report.reasons);
    assert!(report.nodes[0].reachable);
}

#[tokio::test]
async fn a_killed_cluster_node_is_reported_while_the_others_are_read() {
    let mut cluster = PrivateCluster::started(3, 1).await;
    let reader = RedisHealth::with_options(
        &cluster.url(),
        HealthOptions {
            timeout: Duration::from_millis(500),
            ..HealthOptions::default()
        },
    )
    .expect("reader");
    assert_eq!(
        reader.read(&ReadOptions::default()).await.status,
        Status::Ok
    );
    let killed = cluster.node_urls()[3]
        .trim_start_matches("redis://")
        .to_owned();
    cluster.stop_node(3);

    let report = reader.read(&ReadOptions::default()).await;
    assert_eq!(report.nodes.len(), 6, "{:?}", report.nodes);
    let gone = report.node(&killed).expect("the killed node is listed");
    assert!(!gone.reachable);
    assert!(gone.role.is_some(), "its role comes from the topology");
    let answering = report.nodes.iter().filter(|n| n.reachable).count();
    assert_eq!(answering, 5);
    assert_eq!(report.status, Status::Degraded, "{:?}", report.reasons);
    assert!(
        report.reasons.iter().any(|r| r.contains(&killed)),
        "{:?}",
        report.reasons
    );
}

/// A managed service may rename or disable commands: what is refused is
/// a problem of that node's read, the rest is read.
#[tokio::test]
async fn refused_commands_leave_the_rest_of_the_read() {
    let server = private(&[
        "--rename-command",
        "SLOWLOG",
        "hidden-slowlog",
        "--rename-command",
        "MEMORY",
        "hidden-memory",
    ])
    .await;
    let mut c = conn(&server.url()).await;
    fill(&mut c, "svc", 10, 10).await;
    let report = RedisHealth::new(&server.url())
        .expect("reader")
        .read(&ReadOptions {
            keyspace: Some(SampleOptions::default()),
        })
        .await;
    assert_eq!(report.status, Status::Ok, "{:?}", report.reasons);
    let node = &report.nodes[0];
    assert!(node.reachable);
    assert!(node.info.is_some() && node.latency.is_some());
    assert!(node.slowlog.is_none() && node.keyspace.is_none());
    assert_eq!(node.problems.len(), 2, "{:?}", node.problems);
    assert!(
        node.problems
            .iter()
            .all(|p| matches!(p, NodeError::Refused { .. }) && !p.is_outage()),
        "{:?}",
        node.problems
    );
    assert!(
        report
            .keyspace
            .as_ref()
            .is_some_and(|k| k.groups.is_empty())
    );
}
