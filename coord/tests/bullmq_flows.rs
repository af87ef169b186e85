//! `BullMq::flow` and `BullMq::dependencies` against flows made by the real
//! Node BullMQ 5 (`FlowProducer`, `end2end/bullmq/flow.mjs`) and children
//! run by real BullMQ workers (`worker.mjs`), each read compared with what
//! BullMQ itself reports (`getState`, `getDependenciesCount`).
//!
//! Needs `node` on PATH and `npm ci` run in `end2end/`.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use coord::bullmq::{
    BullDependencies, BullFlow, BullFlowJob, BullOnFailure, BullState, MAX_FLOW_CHILDREN,
};
use serde_json::{Value, json};

use common::{BullFixture as Fixture, run};

impl Fixture {
    /// Adds a flow with BullMQ's `FlowProducer`; the tree it made.
    async fn add_flow(&self, flow: Value) -> Value {
        run(
            "flow.mjs",
            &[&self.url, &self.prefix, "add", &flow.to_string()],
        )
        .await
    }

    /// BullMQ's own view of a job: state, dependency counts, parent.
    async fn bullmq_deps(&self, queue: &str, id: &str) -> Value {
        run("flow.mjs", &[&self.url, &self.prefix, "deps", queue, id]).await
    }

    async fn flow(&self, queue: &str, id: &str) -> BullFlow {
        self.bull
            .flow(queue, id, MAX_FLOW_CHILDREN)
            .await
            .expect("flow read")
            .unwrap_or_else(|| panic!("{queue}/{id} is a job"))
    }

    /// Runs a real worker on `queue` until `n` jobs finished.
    async fn work(&self, queue: &str, n: usize, fail: bool) {
        let count = n.to_string();
        let mut args = vec![
            "--count",
            &count,
            "--drain-delay",
            "1",
            "--timeout",
            "30000",
        ];
        if fail {
            args.push("--fail");
        }
        let mut worker = self
            .node_worker(queue, &args, Duration::from_secs(30))
            .await;
        let wanted = if fail { "failed" } else { "completed" };
        for _ in 0..n {
            let line = worker.next().await;
            assert_eq!(line["event"], wanted, "{line}");
        }
        worker.wait_exit().await;
    }
}

fn id_of(node: &Value) -> String {
    node["id"].as_str().expect("id").to_owned()
}

/// (queue, id) of listed jobs, as a set.
fn listed(jobs: &[BullFlowJob]) -> BTreeSet<(String, String)> {
    jobs.iter()
        .map(|j| (j.queue.clone().unwrap_or_default(), j.id.clone()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(q, id)| ((*q).to_owned(), (*id).to_owned()))
        .collect()
}

fn states(jobs: &[BullFlowJob]) -> HashSet<Option<BullState>> {
    jobs.iter().map(|j| j.state).collect()
}

/// Our counts must be BullMQ's `getDependenciesCount`.
fn assert_same_deps(ours: BullDependencies, theirs: &Value) {
    assert_eq!(
        json!({
            "processed": ours.processed,
            "unprocessed": ours.pending,
            "ignored": ours.ignored,
            "failed": ours.failed,
        }),
        theirs["counts"],
        "ours {ours:?}, BullMQ {theirs}"
    );
}

/// Runs each case on the shared Redis and on the shared cluster.
macro_rules! on_redis_and_cluster {
    ($($case:ident: $tag:literal),* $(,)?) => {
        mod single {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Fixture::new($tag).await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Fixture::on_cluster($tag).await).await;
                }
            )*
        }
    };
}

on_redis_and_cluster!(
    bullmq_flow_follows_children_across_queues_as_real_workers_run_them: "bull-flow",
    bullmq_flow_tells_pending_failed_and_ignored_children_apart: "bull-flow-fail",
    bullmq_flow_of_a_wide_parent_is_a_bounded_read: "bull-flow-wide",
    bullmq_flow_names_a_child_under_another_prefix_without_a_queue: "bull-flow-prefix",
);

/// A parent with three children in two queues: waiting for all three, then
/// for the one left once a real worker ran the other queue's two, then for
/// none; each child's parent link resolves to it.
async fn bullmq_flow_follows_children_across_queues_as_real_workers_run_them(fx: Fixture) {
    let tree = fx
        .add_flow(json!({
            "name": "report",
            "queueName": "parents",
            "children": [
                { "name": "send", "queueName": "mail", "data": { "n": 1 } },
                { "name": "send", "queueName": "mail", "data": { "n": 2 } },
                { "name": "resize", "queueName": "thumbs" },
            ],
        }))
        .await;
    let parent = id_of(&tree);
    let children: Vec<String> = tree["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(id_of)
        .collect();
    let (mail_a, mail_b, thumb) = (&children[0], &children[1], &children[2]);

    let counts = fx.bull.counts("parents").await.expect("counts");
    assert_eq!(counts.waiting_children, 1, "{counts:?}");
    let flow = fx.flow("parents", &parent).await;
    assert_eq!(flow.parent, None);
    assert_eq!(flow.pending.total, 3);
    assert_eq!(
        listed(&flow.pending.jobs),
        pairs(&[("mail", mail_a), ("mail", mail_b), ("thumbs", thumb)])
    );
    assert_eq!(
        states(&flow.pending.jobs),
        [Some(BullState::Waiting)].into()
    );
    let names: BTreeSet<_> = flow.pending.jobs.iter().map(|j| j.name.clone()).collect();
    assert_eq!(
        names,
        [Some("resize".to_owned()), Some("send".to_owned())].into()
    );
    for job in &flow.pending.jobs {
        let queue = job.queue.as_deref().expect("under our prefix");
        assert_eq!(job.key, format!("{}:{queue}:{}", fx.prefix, job.id));
        assert_eq!(job.queue_key, format!("{}:{queue}", fx.prefix));
    }
    assert_eq!(
        flow.processed.total + flow.failed.total + flow.ignored.total,
        0
    );
    assert_same_deps(flow.counts(), &fx.bullmq_deps("parents", &parent).await);
    assert_eq!(
        fx.bull
            .dependencies("parents", &["meta", &parent, "no-such-job"])
            .await
            .expect("dependencies: a queue key's name reads as no children"),
        vec![
            BullDependencies::default(),
            BullDependencies {
                pending: 3,
                ..Default::default()
            },
            BullDependencies::default(),
        ]
    );
    // Capped: two listed, one more.
    let capped = fx
        .bull
        .flow("parents", &parent, 2)
        .await
        .expect("flow")
        .expect("job");
    assert_eq!((capped.pending.jobs.len(), capped.pending.more()), (2, 1));

    // A child's parent link resolves, with the parent's state.
    let child = fx.flow("thumbs", thumb).await;
    let up = child.parent.as_ref().expect("a parent");
    assert_eq!(
        (up.queue.as_deref(), up.id.as_str(), up.name.as_deref()),
        (Some("parents"), parent.as_str(), Some("report"))
    );
    assert_eq!(up.state, Some(BullState::WaitingChildren));
    assert_eq!(up.key, format!("{}:parents:{parent}", fx.prefix));
    assert_eq!(child.on_failure, None);
    assert_eq!(child.counts().total(), 0);
    assert_eq!(
        fx.bullmq_deps("thumbs", thumb).await["parentKey"],
        json!(up.key)
    );

    // A real worker runs mail's two: processed, the thumbs child pending.
    fx.work("mail", 2, false).await;
    let flow = fx.flow("parents", &parent).await;
    assert_eq!(
        (flow.pending.total, flow.processed.total),
        (1, 2),
        "{flow:?}"
    );
    assert_eq!(listed(&flow.pending.jobs), pairs(&[("thumbs", thumb)]));
    assert_eq!(
        listed(&flow.processed.jobs),
        pairs(&[("mail", mail_a), ("mail", mail_b)])
    );
    assert_eq!(
        states(&flow.processed.jobs),
        [Some(BullState::Completed)].into()
    );
    let deps = fx.bullmq_deps("parents", &parent).await;
    assert_same_deps(flow.counts(), &deps);
    assert_eq!(deps["state"], "waiting-children");

    // The last child: the parent waits for none and is ready to run.
    fx.work("thumbs", 1, false).await;
    let flow = fx.flow("parents", &parent).await;
    assert_eq!((flow.pending.total, flow.processed.total), (0, 3));
    let deps = fx.bullmq_deps("parents", &parent).await;
    assert_same_deps(flow.counts(), &deps);
    assert_eq!(deps["state"], "waiting");
    let child = fx.flow("mail", mail_a).await;
    assert_eq!(
        child.parent.expect("parent").state,
        Some(BullState::Waiting)
    );

    // A job outside any flow, and no job at all.
    let plain = run("produce.mjs", &[&fx.url, &fx.prefix, "mail", "1"]).await;
    let plain = plain["ids"][0].as_str().expect("id").to_owned();
    let none = fx.flow("mail", &plain).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(
        fx.bull.flow("mail", "no-such-job", 10).await.expect("read"),
        None
    );
    // A key under the queue that is no job hash: not a flow, not an error.
    let mut raw = test_support::redis::raw(&fx.url).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{}:mail:odd", fx.prefix))
        .arg("x")
        .query_async(&mut raw)
        .await
        .expect("set");
    assert_eq!(fx.bull.flow("mail", "odd", 10).await.expect("read"), None);
    fx.done().await;
}

/// A child failing without an option stays pending (the parent waits for
/// a retry); one with `ignoreDependencyOnFailure` is ignored; one with
/// `failParentOnFailure` fails the parent, which leaves waiting-children.
async fn bullmq_flow_tells_pending_failed_and_ignored_children_apart(fx: Fixture) {
    let tree = fx
        .add_flow(json!({
            "name": "report",
            "queueName": "parents",
            "children": [
                { "name": "plain", "queueName": "risky" },
                { "name": "ignored", "queueName": "risky",
                  "opts": { "ignoreDependencyOnFailure": true } },
                { "name": "fatal", "queueName": "fatal",
                  "opts": { "failParentOnFailure": true } },
            ],
        }))
        .await;
    let parent = id_of(&tree);
    let ids: Vec<String> = tree["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(id_of)
        .collect();
    let (plain, ignored, fatal) = (&ids[0], &ids[1], &ids[2]);
    assert_eq!(
        fx.flow("risky", ignored).await.on_failure,
        Some(BullOnFailure::IgnoreDependency)
    );
    assert_eq!(
        fx.flow("fatal", fatal).await.on_failure,
        Some(BullOnFailure::FailParent)
    );

    fx.work("risky", 2, true).await;
    let flow = fx.flow("parents", &parent).await;
    assert_eq!(
        listed(&flow.pending.jobs),
        pairs(&[("risky", plain), ("fatal", fatal)])
    );
    let stuck = flow
        .pending
        .jobs
        .iter()
        .find(|j| &j.id == plain)
        .expect("plain child");
    assert_eq!(
        stuck.state,
        Some(BullState::Failed),
        "pending, yet failed: the parent waits for a retry"
    );
    assert_eq!(listed(&flow.ignored.jobs), pairs(&[("risky", ignored)]));
    assert_eq!(flow.ignored.jobs[0].state, Some(BullState::Failed));
    assert_eq!((flow.failed.total, flow.processed.total), (0, 0));
    let deps = fx.bullmq_deps("parents", &parent).await;
    assert_same_deps(flow.counts(), &deps);
    assert_eq!(deps["state"], "waiting-children");

    fx.work("fatal", 1, true).await;
    let flow = fx.flow("parents", &parent).await;
    assert_eq!(listed(&flow.failed.jobs), pairs(&[("fatal", fatal)]));
    assert_eq!(flow.failed.jobs[0].state, Some(BullState::Failed));
    assert_eq!(listed(&flow.pending.jobs), pairs(&[("risky", plain)]));
    let deps = fx.bullmq_deps("parents", &parent).await;
    assert_same_deps(flow.counts(), &deps);
    assert_ne!(deps["state"], "waiting-children", "{deps}");
    let counts = fx.bull.counts("parents").await.expect("counts");
    assert_eq!(counts.waiting_children, 0, "{counts:?}");
    fx.done().await;
}

/// 150 children: totals exact, at most [`MAX_FLOW_CHILDREN`] listed, all
/// distinct, pending and processed alike.
async fn bullmq_flow_of_a_wide_parent_is_a_bounded_read(fx: Fixture) {
    let reply = run(
        "produce.mjs",
        &[&fx.url, &fx.prefix, "many", "150", "--flow-parent", "wide"],
    )
    .await;
    let parent = reply["parent"].as_str().expect("parent").to_owned();
    let flow = fx.flow("wide", &parent).await;
    assert_eq!(flow.pending.total, 150);
    assert_eq!(flow.pending.jobs.len(), MAX_FLOW_CHILDREN);
    assert_eq!(flow.pending.more(), 50);
    assert_eq!(listed(&flow.pending.jobs).len(), MAX_FLOW_CHILDREN);
    let all: BTreeSet<String> = reply["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();
    assert!(flow.pending.jobs.iter().all(|j| all.contains(&j.id)));
    assert_eq!(
        fx.bull
            .dependencies("wide", &[&parent])
            .await
            .expect("dependencies")[0]
            .pending,
        150
    );

    fx.work("many", 150, false).await;
    let flow = fx.flow("wide", &parent).await;
    assert_eq!((flow.pending.total, flow.processed.total), (0, 150));
    assert_eq!(flow.processed.jobs.len(), MAX_FLOW_CHILDREN);
    assert_eq!(listed(&flow.processed.jobs).len(), MAX_FLOW_CHILDREN);
    assert_eq!(
        states(&flow.processed.jobs),
        [Some(BullState::Completed)].into()
    );
    assert_same_deps(flow.counts(), &fx.bullmq_deps("wide", &parent).await);
    fx.done().await;
}

/// FlowProducer may put a child under another prefix: it is named by its
/// key and looked up there, but has no queue of ours to link.
async fn bullmq_flow_names_a_child_under_another_prefix_without_a_queue(fx: Fixture) {
    // On a cluster the other prefix keeps the hash tag (its first `{…}`).
    let other = format!("{}-other", fx.prefix);
    let tree = fx
        .add_flow(json!({
            "name": "report",
            "queueName": "parents",
            "children": [
                { "name": "far", "queueName": "thumbs", "prefix": other },
            ],
        }))
        .await;
    let parent = id_of(&tree);
    let child = id_of(&tree["children"][0]);
    let flow = fx.flow("parents", &parent).await;
    assert_eq!(flow.pending.jobs.len(), 1);
    let far = &flow.pending.jobs[0];
    assert_eq!(far.queue, None);
    assert_eq!(far.queue_key, format!("{other}:thumbs"));
    assert_eq!(far.id, child);
    assert_eq!(far.name.as_deref(), Some("far"));
    assert_eq!(far.state, Some(BullState::Waiting));
    test_support::redis::delete_matching(&fx.url, &format!("{other}:*")).await;
    fx.done().await;
}
