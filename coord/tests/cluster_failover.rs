//! Failover on Redis Cluster: three masters with a replica each (a private
//! cluster this test starts and kills a master of). A producer enqueues
//! one job at a time and a worker processes them while the master holding
//! the queue is killed: the replica takes over, and producer and worker
//! carry on through the same `Queues` without a restart. Replication is
//! asynchronous, so an enqueue acknowledged just before the kill may never
//! have reached the replica; the test counts such jobs and prints the
//! figure (docs/ARCHITECTURE.md states the window).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::CoordError;
use coord::queue::redis::{RedisBackend, queue_slot};
use coord::queue::{JobId, NewJob, QueueName, Queues};
use serde_json::{Value, json};
use test_support::redis::PrivateCluster;

/// The node (index in the cluster's node list) that masters `slot`.
async fn master_index(cluster: &PrivateCluster, slot: u16) -> usize {
    let urls = cluster.node_urls();
    let mut conn = test_support::redis::raw(&urls[0]).await;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER NODES");
    let topology = coord::redis::Topology::parse(&nodes);
    let master = topology
        .masters()
        .find(|n| n.serves(slot))
        .expect("a master serves the slot");
    urls.iter()
        .position(|u| u.ends_with(&master.address))
        .expect("the master is one of ours")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_is_replaced_and_producers_and_workers_carry_on() {
    let mut cluster = PrivateCluster::started(3, 1).await;
    let backend = RedisBackend::connect(&cluster.url(), "failover")
        .await
        .expect("connect to the private cluster");
    let queues = Queues::new(Arc::new(backend));
    let queue = QueueName::new("orders").expect("queue name");
    let victim = master_index(&cluster, queue_slot(queue.as_str())).await;

    let completed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let worker = {
        let completed = completed.clone();
        queues
            .worker(queue.clone())
            .concurrency(4)
            .lease(Duration::from_secs(2))
            .stalled_interval(Duration::from_millis(500))
            .start(move |job| {
                let completed = completed.clone();
                async move {
                    completed
                        .lock()
                        .expect("set")
                        .insert(job.id.as_str().to_owned());
                    Ok(Value::Null)
                }
            })
            .expect("start the worker")
    };

    // The producer: one job at a time, each acknowledged id kept with the
    // moment it was acknowledged; refusals during the failover counted.
    let acked: Arc<Mutex<Vec<(JobId, Instant)>>> = Arc::default();
    let refused = Arc::new(Mutex::new(0u64));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (queues, queue, acked, refused, slowest, stop) = (
            queues.clone(),
            queue.clone(),
            acked.clone(),
            refused.clone(),
            slowest.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let result = queues
                    .enqueue(&queue, NewJob::new("order", json!({ "n": n })))
                    .await;
                {
                    let mut slowest = slowest.lock().expect("slowest");
                    *slowest = (*slowest).max(started.elapsed());
                }
                match result {
                    Ok(id) => acked.lock().expect("acked").push((id, Instant::now())),
                    Err(e) if e.is_unavailable() => {
                        if *refused.lock().expect("refused") == 0 {
                            eprintln!("first enqueue refused: {e}");
                        }
                        *refused.lock().expect("refused") += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("enqueue failed with something else than an outage: {e}"),
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = acked.lock().expect("acked").len();
    assert!(before > 0, "nothing was enqueued before the kill");
    let killed_at = Instant::now();
    cluster.stop_node(victim);

    // The replica is promoted after the node timeout (2 s); enqueues resume.
    common::eventually_within(
        "enqueues succeed again after the failover",
        Duration::from_secs(30),
        || async {
            acked
                .lock()
                .expect("acked")
                .last()
                .is_some_and(|(_, at)| *at > killed_at + Duration::from_millis(100))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.await.expect("producer");

    // Every acknowledged job either completes or was lost with the master.
    let acked: Vec<(JobId, Instant)> = acked.lock().expect("acked").clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let lost = loop {
        let done = completed.lock().expect("set").clone();
        let mut missing = 0u64;
        let mut pending = 0u64;
        for (id, _) in &acked {
            if done.contains(id.as_str()) {
                continue;
            }
            match queues.job(&queue, id).await {
                Err(CoordError::JobNotFound { .. }) => missing += 1,
                Ok(_) => pending += 1,
                Err(e) if e.is_unavailable() => pending += 1,
                Err(e) => panic!("reading job {id}: {e}"),
            }
        }
        if pending == 0 {
            break missing;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} acknowledged jobs still not processed 60 s after the failover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let after = acked.iter().filter(|(_, at)| *at > killed_at).count();
    eprintln!(
        "failover: {} jobs acknowledged ({before} before the kill, {after} after), \
         {lost} lost, {} enqueues refused while the cluster failed over, \
         the slowest enqueue waited {} ms",
        acked.len(),
        refused.lock().expect("refused"),
        slowest.lock().expect("slowest").as_millis()
    );
    assert!(after > 0, "the producer never recovered");
    // Only jobs acknowledged in the last moments before the kill can be
    // lost (the replica lags by at most a few milliseconds on loopback).
    let recent = acked
        .iter()
        .filter(|(_, at)| {
            *at <= killed_at && killed_at.duration_since(*at) < Duration::from_secs(1)
        })
        .count() as u64;
    assert!(
        lost <= recent,
        "{lost} jobs lost, more than the {recent} acknowledged in the second before the kill"
    );
    // The health check (what readiness and every page's health line use)
    // sees the new topology: all slots served by three working masters.
    common::eventually("the health check sees the promoted replica", || async {
        queues
            .health()
            .await
            .ok()
            .and_then(|h| h.cluster)
            .is_some_and(|t| {
                t.slots_covered() == 16_384 && t.masters().filter(|n| n.healthy).count() == 3
            })
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;
}
