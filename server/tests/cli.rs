//! Tests of the `switchyard` binary itself: errors are one line on stderr
//! with a non-zero exit (never a panic), `enqueue` prints the id, `--help`
//! documents every setting, and `demo` prints its URL and serves until
//! SIGTERM.

#[path = "support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");

/// A temporary working directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-cli-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.join("cli.db").display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary, run in `dir` with none of the caller's `SWITCHYARD_*`
/// settings leaking in.
fn switchyard(dir: &Path) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("SWITCHYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run switchyard")
}

/// Asserts the command failed with exactly one `error: …` line containing
/// `reason`, and returns that line.
fn assert_one_line_error(output: &Output, reason: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "should fail; stderr: {stderr}");
    assert_ne!(output.status.code(), Some(101), "panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(reason), "{reason:?} not in {stderr}");
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    lines[0].to_string()
}

#[test]
fn enqueue_with_malformed_json_is_a_one_line_error() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{\"to\": ",
        "--database-url",
        &dir.database_url(),
    ]));
    assert_one_line_error(&output, "job data is not valid JSON");
    assert!(
        !dir.0.join("cli.db").exists(),
        "nothing is opened for a bad job"
    );
}

#[test]
fn enqueue_with_a_negative_delay_is_a_one_line_error() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{}",
        "--delay-ms",
        "-5",
        "--database-url",
        &dir.database_url(),
    ]));
    assert_one_line_error(&output, "delay must not be negative");
}

#[test]
fn enqueue_with_unreachable_redis_is_a_one_line_error_without_the_password() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{}",
        "--redis",
        "redis://:topsecret@127.0.0.1:1",
    ]));
    let line = assert_one_line_error(&output, "cannot reach Redis at redis://:***@127.0.0.1:1");
    assert!(!line.contains("topsecret"), "{line}");
}

#[test]
fn enqueue_prints_the_new_id() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        r#"{"to":"a@example.com"}"#,
        "--job-id",
        "welcome-1",
        "--priority",
        "2",
        "--attempts",
        "4",
        "--database-url",
        &dir.database_url(),
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "welcome-1\n");
}

#[test]
fn the_environment_configures_the_backend() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0)
        .args(["enqueue", "emails", "welcome", "{}"])
        .env("SWITCHYARD_REDIS_URL", "redis://127.0.0.1:1"));
    assert_one_line_error(&output, "cannot reach Redis at redis://127.0.0.1:1");
}

#[test]
fn postgres_without_redis_is_refused_at_start() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        "postgres://postgres:pw@127.0.0.1:5432/test",
    ]));
    let line = assert_one_line_error(&output, "needs --redis");
    assert!(!line.contains(":pw@"), "{line}");
}

#[test]
fn a_config_file_with_a_typo_is_refused() {
    let dir = Dir::new();
    let config = dir.0.join("switchyard.toml");
    std::fs::write(&config, "lissten = \"127.0.0.1:0\"\n").expect("write config");
    let output = run(switchyard(&dir.0).args(["serve", "--config"]).arg(&config));
    assert_one_line_error(&output, "unknown field `lissten`");
}

#[test]
fn serve_with_unreachable_redis_is_a_one_line_error() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--redis",
        "redis://127.0.0.1:1",
    ]));
    assert_one_line_error(&output, "cannot reach Redis");
}

#[test]
fn help_documents_every_setting_and_its_environment_variable() {
    let dir = Dir::new();
    let output = run(switchyard(&dir.0).arg("--help"));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--listen",
        "SWITCHYARD_LISTEN",
        "--redis <URL>",
        "SWITCHYARD_REDIS_URL",
        "--redis-prefix",
        "SWITCHYARD_REDIS_PREFIX",
        "--database-url",
        "SWITCHYARD_DATABASE_URL",
        "--config",
        "SWITCHYARD_CONFIG",
        "--log",
        "SWITCHYARD_LOG",
        "serve",
        "demo",
        "enqueue",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
}

#[tokio::test]
async fn demo_prints_its_url_serves_live_data_and_stops_on_sigterm() {
    let dir = Dir::new();
    let mut child = switchyard(&dir.0)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &dir.database_url(),
        ])
        .env("SWITCHYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    })
    .await
    .expect("read the first line");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let addr: SocketAddr = url.trim_start_matches("http://").parse().expect("address");

    // Producers and workers start with the server: jobs complete within
    // a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut queues, mut completed) = (0, 0);
    while Instant::now() < deadline {
        let response = http::request(addr, "GET", "/api/queues", &[], b"").await;
        assert_eq!(response.status, 200, "{}", response.body);
        let body = response.json();
        let list = body["queues"].as_array().cloned().unwrap_or_default();
        queues = list.len();
        completed = list
            .iter()
            .filter_map(|q| q["completedTotal"].as_u64())
            .sum::<u64>();
        if queues >= 3 && completed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(queues >= 3, "the demo creates its queues");
    assert!(completed > 0, "demo workers complete jobs");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
}
