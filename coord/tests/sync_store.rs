//! The synced-state store against real databases: every case is written
//! once and run on SQLite (a temporary file) and on PostgreSQL (a fresh
//! schema of the test database), so the two implementations cannot drift.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::PathBuf;

use coord::CoordError;
use coord::queue::sql::SqlBackend;
use coord::sync::{Entry, StateKey, StateStore, state_hash};
use futures_util::FutureExt;
use serde_json::{Value, json};
use sqlx::postgres::{PgPool, PgPoolOptions};
use test_support::postgres::PgSchema;

mod common;

/// A store under test and what must be removed after it.
enum Fixture {
    Sqlite {
        store: StateStore,
        path: PathBuf,
    },
    Postgres {
        store: StateStore,
        pool: PgPool,
        schema: PgSchema,
    },
}

#[derive(Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

impl Fixture {
    async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Sqlite => {
                let path = common::temp_db_path("syncstate");
                // The queue backend's pool: WAL, busy timeout, and the
                // queue tables beside ours, as in a server.
                let backend = SqlBackend::open(path.to_str().expect("utf-8 temp path"))
                    .await
                    .expect("open sqlite");
                let store = StateStore::sqlite(backend.pool().clone())
                    .await
                    .expect("sqlite state store");
                Fixture::Sqlite { store, path }
            }
            Kind::Postgres => {
                let schema = PgSchema::create().await;
                let pool = PgPoolOptions::new()
                    .max_connections(12)
                    .connect(&schema.url())
                    .await
                    .expect("connect to the test PostgreSQL");
                let store = StateStore::postgres(pool.clone())
                    .await
                    .expect("postgres state store");
                Fixture::Postgres {
                    store,
                    pool,
                    schema,
                }
            }
        }
    }

    fn store(&self) -> &StateStore {
        match self {
            Fixture::Sqlite { store, .. } | Fixture::Postgres { store, .. } => store,
        }
    }

    async fn cleanup(self) {
        match self {
            Fixture::Sqlite { store, path } => {
                drop(store);
                common::remove_sqlite(&path);
            }
            Fixture::Postgres {
                store,
                pool,
                schema,
            } => {
                drop(store);
                pool.close().await;
                schema.drop().await;
            }
        }
    }
}

/// Runs a case on two fresh stores of one kind (most cases use only the
/// first) and removes them afterwards, also when the case fails.
async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(StateStore, StateStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let a = Fixture::new(kind).await;
    let b = Fixture::new(kind).await;
    let outcome = std::panic::AssertUnwindSafe(case(a.store().clone(), b.store().clone()))
        .catch_unwind()
        .await;
    a.cleanup().await;
    b.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each case once per database.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Kind::Sqlite, super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Kind::Postgres, super::$case).await;
                }
            )*
        }
    };
}

on_both!(
    put_get_round_trip,
    changes_since_returns_newer_changes_with_tombstones,
    status_change_bumps_version,
    concurrent_writers_get_distinct_gap_free_versions,
    state_hash_depends_on_content_only,
    invalid_input_is_rejected_and_nothing_written,
);

fn key(k: &str) -> StateKey {
    StateKey::new(k).expect("valid key")
}

async fn put_get_round_trip(store: StateStore, _: StateStore) {
    assert_eq!(store.latest_version().await.unwrap(), 0);
    assert!(store.all().await.unwrap().is_empty());
    let k = key("http://example.org/SearchParameter/name");
    let value = json!({"type": "string", "targets": ["Patient", "Practitioner"], "n": 1.5});
    let first = store.put(&k, &value, "pending", "inst-a").await.unwrap();
    assert_eq!(first.key, k);
    assert_eq!(first.value, value);
    assert_eq!(first.status, "pending");
    assert_eq!(first.version, 1);
    assert_eq!(first.updated_by, "inst-a");
    assert!(!first.deleted);
    assert!(first.updated_at > 0);
    assert_eq!(store.get(&k).await.unwrap(), Some(first.clone()));

    let second = store
        .put(&k, &json!("replaced"), "enabled", "inst-b")
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.value, json!("replaced"));
    assert_eq!(second.updated_by, "inst-b");
    assert_eq!(store.get(&k).await.unwrap(), Some(second.clone()));
    assert_eq!(store.latest_version().await.unwrap(), 2);

    let other = store
        .put(&key("b"), &Value::Null, "enabled", "inst-a")
        .await
        .unwrap();
    assert_eq!(other.version, 3);
    let all = store.all().await.unwrap();
    assert_eq!(all, vec![other.clone(), second.clone()]);

    // A delete hides the entry; a later put revives it under a new version.
    let tomb = store.delete(&k, "inst-a").await.unwrap().expect("was live");
    assert!(tomb.deleted);
    assert_eq!(tomb.version, 4);
    assert_eq!(store.get(&k).await.unwrap(), None);
    assert_eq!(store.all().await.unwrap(), vec![other]);
    let revived = store.put(&k, &json!(1), "enabled", "inst-a").await.unwrap();
    assert_eq!(revived.version, 5);
    assert!(!revived.deleted);
    assert_eq!(store.get(&k).await.unwrap(), Some(revived));
}

async fn changes_since_returns_newer_changes_with_tombstones(store: StateStore, _: StateStore) {
    for name in ["a", "b", "c", "d"] {
        store
            .put(&key(name), &json!({"name": name}), "enabled", "x")
            .await
            .unwrap();
    }
    store
        .delete(&key("b"), "x")
        .await
        .unwrap()
        .expect("b was live"); // v5
    store
        .put(&key("a"), &json!(2), "enabled", "x")
        .await
        .unwrap(); // v6
    store
        .set_status(&key("c"), "disabled", "x")
        .await
        .unwrap()
        .expect("c live"); // v7

    let all = store.changes_since(0, 100).await.unwrap();
    let seen: Vec<(String, i64, bool)> = all
        .iter()
        .map(|e| (e.key.to_string(), e.version, e.deleted))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("d".to_string(), 4, false),
            ("b".to_string(), 5, true),
            ("a".to_string(), 6, false),
            ("c".to_string(), 7, false),
        ]
    );

    let newer = store.changes_since(4, 100).await.unwrap();
    assert_eq!(
        newer.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert!(newer[0].deleted);
    assert_eq!(newer[2].status, "disabled");

    // Paging by the last version seen.
    let page = store.changes_since(4, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![5, 6]
    );
    let rest = store.changes_since(page[1].version, 2).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.version).collect::<Vec<_>>(), vec![7]);
    assert!(store.changes_since(7, 100).await.unwrap().is_empty());
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());

    // Replaying the changes yields the live state and its hash.
    let mut applied: BTreeMap<StateKey, Entry> = BTreeMap::new();
    for change in all {
        if change.deleted {
            applied.remove(&change.key);
        } else {
            applied.insert(change.key.clone(), change);
        }
    }
    assert_eq!(
        applied.values().cloned().collect::<Vec<_>>(),
        store.all().await.unwrap()
    );
    assert_eq!(
        state_hash(applied.values()),
        store.state_hash().await.unwrap()
    );
}

async fn status_change_bumps_version(store: StateStore, _: StateStore) {
    let k = key("param");
    let put = store
        .put(&k, &json!({"v": 1}), "pending", "a")
        .await
        .unwrap();
    let changed = store
        .set_status(&k, "enabled", "b")
        .await
        .unwrap()
        .expect("live");
    assert_eq!(changed.version, put.version + 1);
    assert_eq!(changed.status, "enabled");
    assert_eq!(changed.value, put.value);
    assert_eq!(changed.updated_by, "b");
    assert_eq!(store.get(&k).await.unwrap(), Some(changed.clone()));
    assert_eq!(store.latest_version().await.unwrap(), changed.version);
    assert_eq!(
        store.changes_since(put.version, 10).await.unwrap(),
        vec![changed.clone()]
    );

    // No live entry: nothing written, no version used, no resurrection.
    assert_eq!(
        store
            .set_status(&key("missing"), "enabled", "b")
            .await
            .unwrap(),
        None
    );
    store.delete(&k, "a").await.unwrap().expect("live");
    let latest = store.latest_version().await.unwrap();
    assert_eq!(store.set_status(&k, "enabled", "b").await.unwrap(), None);
    assert_eq!(store.delete(&k, "a").await.unwrap(), None);
    assert_eq!(store.latest_version().await.unwrap(), latest);
    assert_eq!(store.get(&k).await.unwrap(), None);
}

const WRITERS: usize = 8;
const PUTS_PER_WRITER: usize = 50;

async fn concurrent_writers_get_distinct_gap_free_versions(store: StateStore, _: StateStore) {
    let total = (WRITERS * PUTS_PER_WRITER) as i64;
    // Readers follow the registry as instances do; with distinct keys no
    // change is ever superseded, so each must see versions 1, 2, 3, … with
    // no hole: a hole would be a change it skipped for good.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seen = 0i64;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while seen < total {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "writers stalled at {seen}"
                    );
                    for change in store.changes_since(seen, 64).await.unwrap() {
                        assert_eq!(change.version, seen + 1, "reader skipped a change");
                        seen = change.version;
                    }
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let by = format!("writer-{w}");
                let mut versions = Vec::new();
                for i in 0..PUTS_PER_WRITER {
                    let k = key(&format!("w{w}/k{i}"));
                    let entry = store
                        .put(&k, &json!({"w": w, "i": i}), "enabled", &by)
                        .await
                        .unwrap();
                    versions.push(entry.version);
                }
                versions
            })
        })
        .collect();
    let mut all_versions = Vec::new();
    for writer in writers {
        let versions = writer.await.unwrap();
        // One writer's own changes are ordered.
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        all_versions.extend(versions);
    }
    let distinct: HashSet<i64> = all_versions.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        all_versions.len(),
        "versions must be distinct"
    );
    all_versions.sort_unstable();
    assert_eq!(all_versions, (1..=total).collect::<Vec<_>>());
    for reader in readers {
        assert_eq!(reader.await.unwrap(), total);
    }

    let changes = store.changes_since(0, 1000).await.unwrap();
    assert_eq!(changes.len(), total as usize);
    assert!(changes.iter().zip(1..).all(|(e, v)| e.version == v));
    assert_eq!(store.latest_version().await.unwrap(), total);
    assert_eq!(store.all().await.unwrap().len(), total as usize);
}

async fn state_hash_depends_on_content_only(a: StateStore, b: StateStore) {
    assert_eq!(a.state_hash().await.unwrap(), b.state_hash().await.unwrap());
    let items = [
        ("alpha", json!({"x": 1, "y": [true, null]}), "enabled"),
        ("beta", json!("text"), "disabled"),
        ("gamma", json!(3.25), "pending"),
    ];
    for (k, v, s) in &items {
        a.put(&key(k), v, s, "inst-a").await.unwrap();
    }
    // Other order, other author, a detour through other content and a
    // deleted extra key: same live content in the end.
    b.put(&key("zeta"), &json!(0), "enabled", "inst-b")
        .await
        .unwrap();
    for (k, v, s) in items.iter().rev() {
        b.put(&key(k), &json!("draft"), "pending", "inst-b")
            .await
            .unwrap();
        b.put(&key(k), v, s, "inst-b").await.unwrap();
    }
    b.delete(&key("zeta"), "inst-b")
        .await
        .unwrap()
        .expect("live");
    let hash = a.state_hash().await.unwrap();
    assert_eq!(hash, b.state_hash().await.unwrap());
    assert_ne!(
        a.latest_version().await.unwrap(),
        b.latest_version().await.unwrap()
    );
    // The in-memory form agrees with the database's.
    assert_eq!(state_hash(&a.all().await.unwrap()), hash);

    // Any change of value, status or the key set changes the hash.
    b.set_status(&key("beta"), "enabled", "inst-b")
        .await
        .unwrap()
        .expect("live");
    let after_status = b.state_hash().await.unwrap();
    assert_ne!(after_status, hash);
    b.set_status(&key("beta"), "disabled", "inst-b")
        .await
        .unwrap()
        .expect("live");
    assert_eq!(b.state_hash().await.unwrap(), hash, "same content again");
    b.put(&key("gamma"), &json!(3.5), "pending", "inst-b")
        .await
        .unwrap();
    let after_value = b.state_hash().await.unwrap();
    assert_ne!(after_value, hash);
    b.delete(&key("gamma"), "inst-b")
        .await
        .unwrap()
        .expect("live");
    let after_delete = b.state_hash().await.unwrap();
    assert_ne!(after_delete, hash);
    assert_ne!(after_delete, after_value);
    b.put(&key("delta"), &json!(3.25), "pending", "inst-b")
        .await
        .unwrap();
    assert_ne!(b.state_hash().await.unwrap(), after_delete);
}

async fn invalid_input_is_rejected_and_nothing_written(store: StateStore, _: StateStore) {
    for bad in [
        String::new(),
        "x".repeat(201),
        "a\nb".into(),
        "tab\there".into(),
        "nul\0".into(),
    ] {
        let err = StateKey::new(bad.clone()).expect_err(&format!("{bad:?} must be refused"));
        assert!(matches!(err, CoordError::InvalidStateKey { .. }), "{err}");
        assert!(err.is_bad_input());
        // Also when it arrives as JSON (a notification, an HTTP body).
        assert!(serde_json::from_value::<StateKey>(json!(bad)).is_err());
    }
    StateKey::new("é".repeat(200)).expect("200 characters are fine");
    StateKey::new("urn:x/y?z=1 #frag").expect("printable punctuation is fine");

    let k = key("kept");
    let kept = store
        .put(&k, &json!({"a": 1}), "enabled", "a")
        .await
        .unwrap();
    let fresh = key("fresh");
    let bad_statuses = [String::new(), "s".repeat(65), "en\nabled".into()];
    for status in &bad_statuses {
        for target in [&k, &fresh] {
            let err = store.put(target, &json!(2), status, "a").await.unwrap_err();
            assert!(
                matches!(err, CoordError::InvalidStateStatus { .. }),
                "{err}"
            );
            assert!(err.is_bad_input());
        }
        let err = store.set_status(&k, status, "a").await.unwrap_err();
        assert!(err.is_bad_input(), "{err}");
    }
    store
        .put(&fresh, &json!(1), &"s".repeat(64), "a")
        .await
        .expect("64 characters are fine");
    store.delete(&fresh, "a").await.unwrap().expect("live");
    let latest = store.latest_version().await.unwrap();

    for by in ["", "a\rb"] {
        let err = store.put(&k, &json!(2), "enabled", by).await.unwrap_err();
        assert!(matches!(err, CoordError::InvalidInstance { .. }), "{err}");
        assert!(store.delete(&k, by).await.unwrap_err().is_bad_input());
    }

    assert_eq!(store.latest_version().await.unwrap(), latest);
    assert_eq!(store.get(&k).await.unwrap(), Some(kept.clone()));
    assert_eq!(store.get(&fresh).await.unwrap(), None);
    assert_eq!(store.all().await.unwrap(), vec![kept]);
}
