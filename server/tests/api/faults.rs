//! Faults provoked for real, and recovery without a restart: a full disk
//! under the SQLite file, a Redis restarted without its data while workers
//! run, a PostgreSQL database the server cannot reach, and readiness
//! telling the truth throughout (issue 14).

use std::path::{Path, PathBuf};
use std::time::Duration;

use coord::queue::{JobState, Retention, RetentionPolicy};
use serde_json::json;
use server::auth::users::{Role, UserName};
use server::config::secret::SecretUrl;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use test_support::TempDir;
use test_support::http::TestResponse;
use test_support::postgres::POSTGRES_URL;
use test_support::redis::{PrivateRedis, REDIS_URL};

use crate::helpers::{TestApp, eventually, qn};

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts an 8 MB tmpfs, or says why it cannot (not root, no mount).
    fn mount(under: &Path) -> Result<Self, String> {
        let dir = under.join("small");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // Whatever is left, byte by byte blocks of 1 KiB.
        while file.write_all(&block[..1024]).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Waits (up to 20 s) until `/health/ready` answers as `check` wants.
async fn readiness_until(app: &TestApp, what: &str, check: impl Fn(&TestResponse) -> bool) {
    eventually(what, async || {
        let ready = app.get("/health/ready").await;
        if check(&ready) {
            Ok(())
        } else {
            Err(format!("{} {}", ready.status, ready.body))
        }
    })
    .await;
}

/// A job small enough for its transaction to stay in SQLite's page cache,
/// so that the full disk is met at `COMMIT` (the case that used to leave
/// a pooled connection stuck inside a transaction).
fn fill_job(i: usize) -> serde_json::Value {
    json!({ "name": "fill", "data": { "i": i, "pad": "x".repeat(512) } })
}

#[tokio::test]
async fn a_full_disk_under_sqlite_is_named_and_writes_resume_once_space_is_back() {
    let dir = TempDir::new("diskfull");
    let disk = match SmallDisk::mount(&dir.0) {
        Ok(disk) => disk,
        // CI runs as root, so this must run there; a developer without
        // root is told why it did not.
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("the disk-full test must run in CI, but cannot mount a tmpfs: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: the disk-full test needs to mount a tmpfs (run as root): {why}");
            return;
        }
    };
    let url = format!("sqlite://{}?mode=rwc", disk.dir.join("s.db").display());
    let app = TestApp::spawn_with(|s| s.database_url = SecretUrl::new(url)).await;
    let first = app.post_json("/api/queues/fill/jobs", &fill_job(0)).await;
    assert_eq!(first.status, 201, "{}", first.body);

    // Workers keep stepping through the fault, as in a real deployment.
    let worker = app
        .queues()
        .worker(qn("fill"))
        .concurrency(4)
        .poll_interval(Duration::from_millis(5))
        .start(|_job| async { Ok(json!({ "done": "y".repeat(256) })) })
        .expect("worker starts");
    let filler = disk.fill();
    // The WAL may still hold free pages: write until a write is refused.
    let mut accepted = 1;
    let mut refused = None;
    for i in 1..20_000 {
        let answer = app.post_json("/api/queues/fill/jobs", &fill_job(i)).await;
        if answer.status == 201 {
            accepted += 1;
            continue;
        }
        refused = Some(answer);
        break;
    }
    let refused = refused.expect("a write is refused once the disk is full");
    assert_eq!(refused.status, 507, "{}", refused.body);
    assert!(refused.error().contains("disk full"), "{}", refused.body);
    // The fault lasts a while, with producers and the worker writing into
    // it: some writes fail at `COMMIT`, after SQLite rolled back by itself,
    // which is what used to leave pooled connections stuck.
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        let answer = app.post_json("/api/queues/fill/jobs", &fill_job(0)).await;
        match answer.status {
            201 => accepted += 1,
            507 => {}
            other => panic!("a write during the fault answered {other}: {}", answer.body),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.error().contains("disk full"), "{}", ready.body);
    assert_eq!(ready.json()["checks"]["queues"]["status"], "down");

    std::fs::remove_file(&filler).expect("free the disk");
    // The next writes go through, without a restart.
    eventually("an enqueue succeeds again", async || {
        let answer = app
            .post_json("/api/queues/fill/jobs", &fill_job(1000))
            .await;
        if answer.status == 201 {
            Ok(())
        } else {
            Err(format!("{} {}", answer.status, answer.body))
        }
    })
    .await;
    readiness_until(&app, "readiness is ok again", |ready| ready.status == 200).await;
    eventually("the worker finishes jobs again", async || {
        let counts = app.counts("fill").await;
        if counts.waiting == 0 && counts.active == 0 {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;
    // Every accepted job is still there, and done.
    let counts = app.counts("fill").await;
    assert_eq!(counts.completed, accepted + 1, "{counts:?}");
    app.stop().await;
    drop(disk);
}

#[tokio::test]
async fn a_redis_restarted_without_its_data_gets_its_queues_and_settings_back() {
    let redis = PrivateRedis::started().await;
    let mut app = TestApp::spawn_redis_with(&redis.url(), None, |_| {}).await;
    let queue = qn("emails");
    let policy = RetentionPolicy {
        completed: Retention {
            max_count: Some(50),
            max_age_ms: None,
        },
        failed: Retention {
            max_count: Some(20),
            max_age_ms: Some(86_400_000),
        },
    };
    app.queues()
        .set_retention(&queue, policy)
        .await
        .expect("retention");
    let mut ids_before = Vec::new();
    for i in 0..5 {
        ids_before.push(
            app.enqueue("emails", &json!({ "name": "welcome", "data": { "i": i } }))
                .await,
        );
    }
    let worker = app
        .queues()
        .worker(queue.clone())
        .poll_interval(Duration::from_millis(20))
        .start(|_job| async { Ok(json!(null)) })
        .expect("worker starts");
    let queues = app.queues().clone();
    eventually("the worker completes the first jobs", async || {
        let counts = queues.counts(&queue).await.map_err(|e| e.to_string())?;
        if counts.completed == 5 {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .await;

    // Redis dies and comes back empty (no persistence), on the same port.
    let port = redis.port();
    drop(redis);
    let down = app.get("/health/ready").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(
        down.json()["checks"]["queues"]["status"],
        "down",
        "{}",
        down.body
    );
    let redis = PrivateRedis::start(port);
    redis.ready().await;
    // The sign-in sessions were in that Redis too: the operator signs in
    // again.
    app.sign_in_again().await;

    // The producer (here: the API) goes on; the queue comes back on the
    // dashboard within seconds, with its settings.
    let mut ids_after = Vec::new();
    eventually("enqueues succeed again", async || {
        let answer = app
            .post_json(
                "/api/queues/emails/jobs",
                &json!({ "name": "welcome", "data": { "after": true } }),
            )
            .await;
        if answer.status == 201 {
            ids_after.push(answer.json()["id"].as_str().unwrap_or_default().to_owned());
            Ok(())
        } else {
            Err(format!("{} {}", answer.status, answer.body))
        }
    })
    .await;
    eventually("the queue is listed again", async || {
        let list = app.get("/api/queues").await.json();
        let names: Vec<&str> = list["queues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|q| q["name"].as_str())
            .collect();
        if names.contains(&"emails") {
            Ok(())
        } else {
            Err(format!("{list}"))
        }
    })
    .await;
    let page = app.get("/queues").await;
    assert!(page.body.contains("/queues/emails"), "{}", page.body);
    assert_eq!(
        app.queues().retention(&queue).await.expect("retention"),
        policy,
        "the retention this process set is restored"
    );
    // Ids go on above the ones handed out before, never again from 1.
    let max_before: u64 = ids_before
        .iter()
        .map(|id| id.parse::<u64>().unwrap())
        .max()
        .unwrap();
    let after: u64 = ids_after[0].parse().expect("numeric id");
    assert!(after > max_before, "{after} after {ids_before:?}");
    // The worker carries on with the new job.
    eventually("the worker completes the new job", async || {
        let job = queues
            .job(
                &queue,
                &coord::queue::JobId::new(ids_after[0].clone()).unwrap(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if job.state == JobState::Completed {
            Ok(())
        } else {
            Err(format!("{:?}", job.state))
        }
    })
    .await;

    // A dashboard started only now sees the queue too.
    let second = TestApp::spawn_redis_with(
        &redis.url(),
        Some(&app.app.state.settings.redis_prefix),
        |_| {},
    )
    .await;
    let list = second.get("/api/queues").await.json();
    assert!(list.to_string().contains("\"emails\""), "{list}");
    second.stop().await;

    worker.shutdown(Duration::from_secs(5)).await;
    app.stop().await;
    drop(redis);
}

#[tokio::test]
async fn a_lost_registry_is_rebuilt_from_the_queues_keys_after_a_reconnect() {
    let redis = PrivateRedis::started().await;
    let app = TestApp::spawn_redis_with(&redis.url(), None, |_| {}).await;
    app.enqueue("reports", &json!({ "name": "daily" })).await;
    let prefix = app.app.state.settings.redis_prefix.clone();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Only the registry goes, and every client is dropped, as in a
    // failover that lost one key's node.
    redis::cmd("DEL")
        .arg(format!("{prefix}:queues"))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    eventually("the queue is listed again without any write", async || {
        let list = app.get("/api/queues").await.json();
        if list.to_string().contains("\"reports\"") {
            Ok(())
        } else {
            Err(format!("{list}"))
        }
    })
    .await;
    app.stop().await;
    drop(redis);
}

/// A PostgreSQL database of the test's own (connections can be refused to
/// it alone), dropped at the end.
struct OwnDatabase {
    name: String,
}

impl OwnDatabase {
    async fn create() -> Self {
        let name = format!("sy_fault_{:012x}", rand::random::<u64>() >> 16);
        admin(&format!("CREATE DATABASE {name}")).await;
        Self { name }
    }

    fn url(&self) -> SecretUrl {
        SecretUrl::new(format!("postgres://postgres@127.0.0.1:5432/{}", self.name))
    }

    /// Refuses new connections and ends the open ones.
    async fn cut_off(&self) {
        admin(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            self.name
        ))
        .await;
        admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ))
        .await;
    }

    async fn reopen(&self) {
        admin(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        ))
        .await;
    }

    /// Drops it and creates it again, empty.
    async fn recreate_empty(&self) {
        admin(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).await;
        admin(&format!("CREATE DATABASE {}", self.name)).await;
    }

    async fn drop(self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

async fn admin(sql: &str) {
    let mut con = PgConnection::connect(POSTGRES_URL)
        .await
        .expect("PostgreSQL is running on 127.0.0.1:5432 with database test");
    sqlx::query(sql).execute(&mut con).await.expect(sql);
}

async fn with_token(app: &TestApp, method: &str, path: &str, token: &str) -> TestResponse {
    let bearer = format!("Bearer {token}");
    let body: &[u8] = if method == "POST" {
        br#"{"name":"send","data":{}}"#
    } else {
        b""
    };
    app.request_as(
        None,
        method,
        path,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn api_tokens_ride_out_a_postgres_outage_and_readiness_names_the_database() {
    let database = OwnDatabase::create().await;
    let app = TestApp::spawn_redis_with(REDIS_URL, None, |s| {
        s.database_url = database.url();
        s.auth.api_tokens = true;
    })
    .await;
    let bot = app.sign_in_as("ci-bot", Role::Operator).await;
    drop(bot);
    let users = &app.app.state.users;
    let (_, token) = users
        .add_token(&UserName::new("ci-bot").unwrap(), "deploys")
        .await
        .expect("token");
    let (revoked_id, revoked) = users
        .add_token(&UserName::new("ci-bot").unwrap(), "old")
        .await
        .expect("token");
    assert_eq!(
        with_token(&app, "GET", "/api/queues", &token).await.status,
        200
    );
    assert_eq!(
        with_token(&app, "GET", "/api/queues", &revoked)
            .await
            .status,
        200
    );
    users.revoke_token(&revoked_id.id).await.expect("revoke");
    // The browser session is read once, so its outage grace applies.
    assert_eq!(app.get("/").await.status, 200);

    database.cut_off().await;
    // Enqueueing needs Redis only: it goes on, with the token as verified.
    let list = with_token(&app, "GET", "/api/queues", &token).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let enqueued = with_token(&app, "POST", "/api/queues/emails/jobs", &token).await;
    assert_eq!(enqueued.status, 201, "{}", enqueued.body);
    // What needs the database says so.
    let audit = with_token(&app, "GET", "/api/audit", &token).await;
    assert_eq!(audit.status, 503, "{}", audit.body);
    // A revoked token stays revoked.
    let refused = with_token(&app, "GET", "/api/queues", &revoked).await;
    assert!(matches!(refused.status, 401 | 503), "{}", refused.body);
    // Readiness names the database.
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(
        ready.json()["checks"]["database"]["status"],
        "down",
        "{}",
        ready.body
    );
    assert_eq!(
        ready.json()["checks"]["queues"]["status"],
        "ok",
        "{}",
        ready.body
    );
    // So does the Overview, once its checks refresh.
    eventually("the overview shows the database down", async || {
        let page = app.get("/").await;
        if page.body.contains("data-dependency=\"database\"") {
            Ok(())
        } else {
            Err(format!(
                "{} without the database line: {}",
                page.status, page.body
            ))
        }
    })
    .await;

    database.reopen().await;
    readiness_until(&app, "readiness is ok once the database answers", |ready| {
        ready.status == 200
    })
    .await;
    assert_eq!(
        with_token(&app, "GET", "/api/queues", &revoked)
            .await
            .status,
        401
    );

    // Dropped and created again empty: the database answers, but has no
    // tables, and readiness says so.
    database.recreate_empty().await;
    readiness_until(&app, "readiness names the missing schema", |ready| {
        ready.status == 503 && ready.body.contains("schema")
    })
    .await;
    app.stop().await;
    database.drop().await;
}

#[tokio::test]
async fn readiness_is_503_while_the_bullmq_redis_is_down() {
    let redis = PrivateRedis::started().await;
    let url = redis.url();
    let app = TestApp::spawn_with(|s| {
        s.bullmq = Some(server::bullmq::BullSettings {
            url: SecretUrl::new(url.clone()),
            prefix: "bull".into(),
            queues: Vec::new(),
            discover_every: server::bullmq::DISCOVER_EVERY,
        });
    })
    .await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["checks"]["bullmq"]["status"], "ok");
    let port = redis.port();
    drop(redis);
    readiness_until(&app, "readiness names BullMQ", |ready| {
        ready.status == 503 && ready.json()["checks"]["bullmq"]["status"] == "down"
    })
    .await;
    let redis = PrivateRedis::start(port);
    redis.ready().await;
    readiness_until(&app, "readiness recovers with BullMQ", |ready| {
        ready.status == 200
    })
    .await;
    app.stop().await;
    drop(redis);
}
