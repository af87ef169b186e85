//! Finding jobs across queues, written once against [`Queues`] and run on
//! every backend: an id found in every queue that has it, and text search
//! with qualifiers (the embedded backend through its FTS5 index, filled
//! by `index_search`; Redis by reading the newest jobs).

#[macro_use]
mod common;

use std::time::Duration;

use coord::CoordError;
use coord::queue::{JobError, JobId, JobState, NewJob, Outcome, OutcomeResult, QueueName, Queues};
use coord::search::SearchQuery;
use coord::time::now_ms;
use serde_json::json;

use common::queue;

per_backend!(
    a_job_id_is_found_in_every_queue_that_has_it,
    text_search_with_qualifiers,
    a_removed_job_is_not_found_again,
);

const LEASE: Duration = Duration::from_secs(30);

/// Indexes everything (the embedded backend's FTS index) and searches.
async fn search(q: &Queues, text: &str) -> coord::search::SearchResult {
    while q.index_search(10_000).await.expect("index").pending > 0 {}
    q.search(&SearchQuery::parse(text).expect("query"), 50)
        .await
        .expect("search")
}

/// The (queue, id) of each hit, newest first.
fn found(result: &coord::search::SearchResult) -> Vec<(String, String)> {
    result
        .hits
        .iter()
        .map(|h| (h.queue.to_string(), h.id.to_string()))
        .collect()
}

/// Claims the next job of `queue` (which must be `id`) and fails it.
async fn fail(q: &Queues, queue: &QueueName, id: &JobId, reason: &str) {
    let claimed = q
        .backend()
        .step(queue, Vec::new(), 1, LEASE)
        .await
        .expect("claim")
        .claimed;
    assert_eq!(&claimed[0].id, id);
    let outcome = Outcome {
        job_id: id.clone(),
        lease_token: claimed[0].lease_token.clone().expect("token"),
        started_at: now_ms(),
        finished_at: now_ms(),
        result: OutcomeResult::Failed {
            error: JobError::fatal(reason),
            retry_delay_ms: 0,
        },
    };
    q.backend()
        .step(queue, vec![outcome], 0, LEASE)
        .await
        .expect("settle");
}

mod cases {
    use super::*;

    pub async fn a_job_id_is_found_in_every_queue_that_has_it(q: Queues) {
        let (a, b, c) = (queue("find-a"), queue("find-b"), queue("find-c"));
        let id_a = q.enqueue(&a, NewJob::new("x", json!({}))).await.expect("a");
        let id_b = q.enqueue(&b, NewJob::new("x", json!({}))).await.expect("b");
        q.enqueue(&c, NewJob::new("x", json!({}))).await.expect("c");
        q.remove(&c, &id_a).await.expect("remove from c");
        assert_eq!(
            id_a, id_b,
            "ids are per queue: both queues have the first id"
        );
        let mut where_: Vec<(String, &str)> = q
            .find_job(&id_a)
            .await
            .expect("find")
            .into_iter()
            .map(|f| (f.queue.to_string(), f.state.as_str()))
            .filter(|(queue, _)| [&a, &b, &c].iter().any(|n| n.as_str() == queue))
            .collect();
        where_.sort();
        assert_eq!(
            where_,
            vec![(a.to_string(), "waiting"), (b.to_string(), "waiting")]
        );
        let nowhere = JobId::new("no-such-job-anywhere").expect("id");
        assert!(q.find_job(&nowhere).await.expect("find").is_empty());
    }

    pub async fn text_search_with_qualifiers(q: Queues) {
        let (mail, hooks) = (queue("search-mail"), queue("search-hooks"));
        let welcome = q
            .enqueue(
                &mail,
                NewJob::new(
                    "send-welcome",
                    json!({ "to": "ada@example.com", "user": { "id": 4217, "vip": true } }),
                ),
            )
            .await
            .expect("enqueue");
        let invoice = q
            .enqueue(
                &mail,
                NewJob::new(
                    "send-invoice",
                    json!({ "to": "grace@example.com", "user": { "id": 99 } }),
                ),
            )
            .await
            .expect("enqueue");
        fail(&q, &mail, &welcome, "SMTP 421 greylisted by mx.example.com").await;
        let hook = q
            .enqueue(
                &hooks,
                NewJob::new(
                    "deliver",
                    json!({ "url": "https://crm.example.org/hook", "user": { "id": 4217 } }),
                ),
            )
            .await
            .expect("enqueue");
        let mine = |r: &coord::search::SearchResult| {
            let mut v: Vec<(String, String)> = found(r)
                .into_iter()
                .filter(|(queue, _)| queue == mail.as_str() || queue == hooks.as_str())
                .collect();
            v.sort();
            v
        };
        let m = |id: &JobId| (mail.to_string(), id.to_string());
        let h = |id: &JobId| (hooks.to_string(), id.to_string());

        // A data value by key, across queues.
        let r = search(&q, "data.user.id:4217").await;
        assert_eq!(mine(&r), vec![h(&hook), m(&welcome)], "{r:?}");
        // Booleans and nested keys; a value elsewhere in the data is not a match.
        let r = search(&q, "data.user.vip:true").await;
        assert_eq!(mine(&r), vec![m(&welcome)]);
        let r = search(&q, "data.to:4217").await;
        assert!(mine(&r).is_empty(), "{r:?}");
        // Words in the name or the data, restricted by queue and state.
        let r = search(&q, "example").await;
        assert_eq!(mine(&r), vec![h(&hook), m(&welcome), m(&invoice)]);
        let r = search(&q, &format!("example queue:{mail}")).await;
        assert_eq!(mine(&r), vec![m(&welcome), m(&invoice)]);
        let r = search(&q, "name:send state:waiting").await;
        assert_eq!(mine(&r), vec![m(&invoice)]);
        // The last error.
        let r = search(&q, "error:greylisted").await;
        assert_eq!(mine(&r), vec![m(&welcome)]);
        let r = search(&q, r#"error:"421 greylisted" name:welcome"#).await;
        assert_eq!(mine(&r), vec![m(&welcome)]);
        // Every result says what it searched.
        assert!(!r.searched.is_empty());
        let hit = r
            .hits
            .iter()
            .find(|hit| hit.queue == mail)
            .expect("the welcome job");
        assert_eq!(hit.state, JobState::Failed);
        assert_eq!(hit.name, "send-welcome");
        assert_eq!(
            hit.failed_reason.as_deref(),
            Some("SMTP 421 greylisted by mx.example.com")
        );
        // Bad limits are errors.
        assert!(matches!(
            q.search(&SearchQuery::parse("x").expect("q"), 0).await,
            Err(CoordError::InvalidOptions(_))
        ));
    }

    pub async fn a_removed_job_is_not_found_again(q: Queues) {
        let queue = queue("search-removed");
        let id = q
            .enqueue(
                &queue,
                NewJob::new("tidy", json!({ "marker": "zebracorn" })),
            )
            .await
            .expect("enqueue");
        let r = search(&q, "zebracorn").await;
        assert_eq!(found(&r), vec![(queue.to_string(), id.to_string())]);
        q.remove(&queue, &id).await.expect("remove");
        // Gone at once, before the index is swept; a job that takes the
        // same place is found by its own data.
        let r = q
            .search(&SearchQuery::parse("zebracorn").expect("q"), 50)
            .await
            .expect("search");
        assert!(found(&r).is_empty(), "{r:?}");
        let next = q
            .enqueue(&queue, NewJob::new("tidy", json!({ "marker": "okapi" })))
            .await
            .expect("enqueue");
        assert!(found(&search(&q, "zebracorn").await).is_empty());
        assert_eq!(
            found(&search(&q, "okapi").await),
            vec![(queue.to_string(), next.to_string())]
        );
    }
}
