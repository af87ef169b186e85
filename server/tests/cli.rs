//! Tests of the `switchyard` binary itself: errors are one line on stderr
//! with a non-zero exit (never a panic), `enqueue` prints the id, `--help`
//! documents every setting, and `demo` prints its URL and serves until
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::TempDir as Dir;
use test_support::http;
use test_support::postgres::PgSchema;

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");

/// The URL of the SQLite database the binary keeps in `dir`.
fn database_url(dir: &Dir) -> String {
    format!("sqlite://{}?mode=rwc", dir.0.join("cli.db").display())
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
    let dir = Dir::new("cli");
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{\"to\": ",
        "--database-url",
        &database_url(&dir),
    ]));
    assert_one_line_error(&output, "job data is not valid JSON");
    assert!(
        !dir.0.join("cli.db").exists(),
        "nothing is opened for a bad job"
    );
}

#[test]
fn enqueue_with_a_negative_delay_is_a_one_line_error() {
    let dir = Dir::new("cli");
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{}",
        "--delay-ms",
        "-5",
        "--database-url",
        &database_url(&dir),
    ]));
    assert_one_line_error(&output, "delay must not be negative");
}

#[test]
fn enqueue_with_unreachable_redis_is_a_one_line_error_without_the_password() {
    let dir = Dir::new("cli");
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

/// On Redis Cluster the CLI enqueues through the cluster URL; a plain URL
/// naming one node is refused in one line saying what to use, whichever
/// node the queue's slot lives on (queues are spread so that at least one
/// of them is on another node).
#[test]
fn enqueue_works_on_a_cluster_and_a_plain_url_to_a_node_says_what_to_use() {
    let dir = Dir::new("cli");
    let cluster = test_support::redis::cluster_url();
    let prefix = format!("cli-cluster-{:08x}", rand::random::<u32>());
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "hello",
        r#"{"a":1}"#,
        "--redis",
        cluster.as_str(),
        "--redis-prefix",
        prefix.as_str(),
    ]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());

    let node = cluster
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .expect("a seed");
    let plain = format!("redis://{node}");
    let refused = ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .map(|queue| {
            run(switchyard(&dir.0).args([
                "enqueue",
                queue,
                "hello",
                "{}",
                "--redis",
                plain.as_str(),
                "--redis-prefix",
                prefix.as_str(),
            ]))
        })
        .find(|output| !output.status.success())
        .expect("a queue on another node than the one named");
    assert_one_line_error(&refused, "redis+cluster://");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(test_support::redis::delete_matching(
        &cluster,
        &format!("{prefix}:*"),
    ));
}

#[test]
fn enqueue_prints_the_new_id() {
    let dir = Dir::new("cli");
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
        &database_url(&dir),
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "welcome-1\n");
}

#[test]
fn the_environment_configures_the_backend() {
    let dir = Dir::new("cli");
    let output = run(switchyard(&dir.0)
        .args(["enqueue", "emails", "welcome", "{}"])
        .env("SWITCHYARD_REDIS_URL", "redis://127.0.0.1:1"));
    assert_one_line_error(&output, "cannot reach Redis at redis://127.0.0.1:1");
}

#[test]
fn postgres_without_redis_is_refused_at_start() {
    let dir = Dir::new("cli");
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
    let dir = Dir::new("cli");
    let config = dir.0.join("switchyard.toml");
    std::fs::write(&config, "lissten = \"127.0.0.1:0\"\n").expect("write config");
    let output = run(switchyard(&dir.0).args(["serve", "--config"]).arg(&config));
    assert_one_line_error(&output, "unknown field `lissten`");
}

#[test]
fn a_config_file_value_of_the_wrong_type_names_the_key_and_the_line() {
    let dir = Dir::new("cli");
    let config = dir.0.join("switchyard.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n\nbusy_active = \"lots\"\n",
    )
    .expect("write config");
    let output = run(switchyard(&dir.0).args(["serve", "--config"]).arg(&config));
    assert_one_line_error(
        &output,
        &format!(
            r#"invalid config file {}, line 3: busy_active: invalid type: string "lots", expected u64"#,
            config.display()
        ),
    );
}

#[test]
fn a_config_file_syntax_error_names_the_line() {
    let dir = Dir::new("cli");
    let config = dir.0.join("switchyard.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlog = \n").expect("write config");
    let output = run(switchyard(&dir.0).args(["serve", "--config"]).arg(&config));
    assert_one_line_error(
        &output,
        &format!("invalid config file {}, line 2: ", config.display()),
    );
}

#[test]
fn a_malformed_redis_url_is_refused_as_a_setting_without_the_password() {
    let dir = Dir::new("cli");
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{}",
        "--redis",
        "redis://:topsecret@127.0.0.1:99999",
    ]));
    let line = assert_one_line_error(
        &output,
        "--redis: invalid Redis URL redis://***@127.0.0.1:99999 (port out of range",
    );
    assert!(!line.contains("topsecret"), "{line}");
    assert!(!line.contains("job options"), "{line}");
}

#[test]
fn enqueue_with_a_delay_over_ten_years_is_a_one_line_error() {
    let dir = Dir::new("cli");
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{}",
        "--delay-ms",
        "9223372036854775807",
        "--database-url",
        &database_url(&dir),
    ]));
    assert_one_line_error(&output, "delayMs must be at most 315360000000 (10 years)");
    assert!(
        !dir.0.join("cli.db").exists(),
        "nothing is opened for a bad job"
    );
}

#[test]
fn serve_with_unreachable_redis_is_a_one_line_error() {
    let dir = Dir::new("cli");
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
    let dir = Dir::new("cli");
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
    let dir = Dir::new("cli");
    let mut child = switchyard(&dir.0)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url(&dir),
        ])
        .env("SWITCHYARD_LOG", "warn")
        .env("SWITCHYARD_ADMIN_PASSWORD", "demo test password")
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
    let cookie = session_cookie(addr, "admin", "demo test password")
        .await
        .expect("the admin from the environment signs in");

    // Producers and workers start with the server: jobs complete within
    // a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut queues, mut completed) = (0, 0);
    while Instant::now() < deadline {
        let response = http::request(addr, "GET", "/api/queues", &[("Cookie", &cookie)], b"").await;
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

// ---- `switchyard user …` and the first admin -------------------------

/// Runs the binary with `stdin` piped in (an empty pipe when `None`).
fn run_with_stdin(cmd: &mut Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run switchyard");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("wait")
}

/// `switchyard user <args> --database-url <dir's db>`.
fn user(dir: &Dir, args: &[&str], stdin: Option<&str>) -> Output {
    run_with_stdin(
        switchyard(&dir.0)
            .arg("user")
            .args(args)
            .args(["--database-url", &database_url(dir)]),
        stdin,
    )
}

/// As [`user`], logging everything (`--log debug`), so a test can check
/// the password reaches no log line.
fn user_logged(dir: &Dir, args: &[&str], stdin: Option<&str>) -> Output {
    let mut args = args.to_vec();
    args.extend(["--log", "debug"]);
    user(dir, &args, stdin)
}

fn assert_ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The exit code is 1 (not clap's 2, not a panic's 101).
fn assert_user_error(output: &Output, reason: &str, secret: &str) {
    let line = assert_one_line_error(output, reason);
    assert_eq!(output.status.code(), Some(1), "{line}");
    assert!(!line.contains(secret), "{line}");
}

/// Checks `password` against the directory's database, as sign-in will.
async fn verifies(dir: &Dir, name: &str, password: &str) -> Option<server::auth::users::User> {
    let url = server::config::secret::SecretUrl::new(database_url(dir));
    let db = server::db::Database::connect(&url).await.expect("connect");
    let user = server::auth::users::UserStore::new(db.clone())
        .verify(name, password)
        .await
        .expect("verify");
    db.close().await;
    user
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin() {
    let dir = Dir::new("cli");
    let pw = "stdin password 1";
    let output = user_logged(
        &dir,
        &["add", "ada", "--role", "operator"],
        Some(&format!("{pw}\n")),
    );
    assert_eq!(assert_ok(&output), "", "nothing to print");
    assert!(!String::from_utf8_lossy(&output.stderr).contains(pw));
    let ada = verifies(&dir, "ada", pw).await.expect("the password works");
    assert_eq!(ada.role, server::auth::users::Role::Operator);
    assert!(verifies(&dir, "ada", "stdin password 2").await.is_none());

    let list = assert_ok(&user(&dir, &["list"], None));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["NAME", "ROLE", "DISABLED"],
            vec!["ada", "operator", "no"]
        ]
    );
}

#[tokio::test]
async fn user_add_generate_prints_a_password_once_and_it_works() {
    let dir = Dir::new("cli");
    let output = user_logged(
        &dir,
        &["add", "root", "--role", "admin", "--generate"],
        None,
    );
    let stdout = assert_ok(&output);
    let pw = stdout.trim_end();
    assert_eq!(pw.len(), 20, "{stdout:?}");
    assert!(pw.bytes().all(|b| b.is_ascii_alphanumeric()), "{pw}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains(pw));
    let root = verifies(&dir, "root", pw)
        .await
        .expect("the printed password works");
    assert_eq!(root.role, server::auth::users::Role::Admin);
}

#[tokio::test]
async fn user_passwd_and_disable() {
    let dir = Dir::new("cli");
    assert_ok(&user(
        &dir,
        &["add", "ada", "--role", "viewer"],
        Some("first password!\n"),
    ));
    let output = user_logged(&dir, &["passwd", "ada"], Some("second password!\r\n"));
    assert_eq!(assert_ok(&output), "");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("second password!"));
    assert!(verifies(&dir, "ada", "first password!").await.is_none());
    assert!(verifies(&dir, "ada", "second password!").await.is_some());

    assert_eq!(assert_ok(&user(&dir, &["disable", "ada"], None)), "");
    assert!(verifies(&dir, "ada", "second password!").await.is_none());
    let list = assert_ok(&user(&dir, &["list"], None));
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["ada", "viewer", "yes"]),
        "{list}"
    );
}

#[test]
fn user_command_errors_are_one_line_with_exit_code_1() {
    let dir = Dir::new("cli");
    let pw = "a good password";
    // Refused before the database is opened.
    assert_user_error(
        &user(&dir, &["add", "bad name!", "--role", "admin"], Some(pw)),
        "invalid user name \"bad name!\"",
        pw,
    );
    assert_user_error(
        &user(&dir, &["add", "ada", "--role", "root"], Some(pw)),
        "unknown role \"root\" (expected viewer, operator or admin)",
        pw,
    );
    assert_user_error(
        &user(&dir, &["add", "ada", "--role", "admin"], Some("tooshort\n")),
        "the password is too short: use at least 12 characters",
        "tooshort",
    );
    assert_user_error(
        &user(&dir, &["add", "ada", "--role", "admin"], None),
        "cannot read the password from stdin",
        pw,
    );
    assert!(
        !dir.0.join("cli.db").exists(),
        "nothing is opened for bad input"
    );

    assert_ok(&user(&dir, &["add", "ada", "--role", "admin"], Some(pw)));
    assert_user_error(
        &user(
            &dir,
            &["add", "ada", "--role", "viewer"],
            Some("another password"),
        ),
        "user ada already exists",
        "another password",
    );
    assert_user_error(
        &user(&dir, &["passwd", "bob"], Some("another password")),
        "no user named bob",
        "another password",
    );
    assert_user_error(
        &user(&dir, &["passwd", "ada"], Some("pw-x9")),
        "the password is too short",
        "pw-x9",
    );
    assert_user_error(
        &user(&dir, &["disable", "bob"], None),
        "no user named bob",
        pw,
    );
}

#[tokio::test]
async fn the_first_admin_comes_from_the_environment() {
    let dir = Dir::new("cli");
    let pw = "env admin password";
    // A short one stops startup, without showing it.
    let output = run(switchyard(&dir.0)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url(&dir),
        ])
        .env("SWITCHYARD_ADMIN_PASSWORD", "tooshort"));
    assert_user_error(
        &output,
        "first admin: the password is too short",
        "tooshort",
    );

    let mut child = switchyard(&dir.0)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url(&dir),
        ])
        .env("SWITCHYARD_LOG", "debug")
        .env("SWITCHYARD_ADMIN_USER", "boss")
        .env("SWITCHYARD_ADMIN_PASSWORD", pw)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    })
    .await
    .expect("read the first line");
    assert!(line.contains("serving on http://"), "{line}");
    wait_serving(&line).await;
    assert!(
        signs_in(&line, "boss", pw).await,
        "the first admin signs in"
    );
    assert!(!signs_in(&line, "boss", "not the password").await);
    let boss = verifies(&dir, "boss", pw)
        .await
        .expect("created at startup");
    assert_eq!(boss.role, server::auth::users::Role::Admin);
    stop(child, pw, None).await;
}

/// Waits until the server printed in `line` answers, so its SIGTERM
/// handler is in place.
async fn wait_serving(line: &str) {
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let addr: SocketAddr = url.trim_start_matches("http://").parse().expect("address");
    let response = http::request(addr, "GET", "/health", &[], b"").await;
    assert_eq!(response.status, 200, "{}", response.body);
}

/// Signs in over HTTP at the server printed in `line`; true when the
/// sign-in form accepted the name and password.
async fn signs_in(line: &str, name: &str, password: &str) -> bool {
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let addr: SocketAddr = url.trim_start_matches("http://").parse().expect("address");
    session_cookie(addr, name, password).await.is_some()
}

/// The `switchyard_session=…` cookie pair a sign-in at `addr` sets, if it
/// succeeds.
async fn session_cookie(addr: SocketAddr, name: &str, password: &str) -> Option<String> {
    let body = http::form_encode(&[("username", name), ("password", password), ("next", "/")]);
    let response = http::request(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await;
    if response.status != 303 {
        return None;
    }
    response
        .set_cookie("switchyard_session")
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// SIGTERM, a clean exit, and nothing on stderr mentions `secret`.
/// Reads a child's stderr to its end on a thread of its own: a debug log
/// fills a pipe nobody reads within seconds, and the server then stalls on
/// its next line.
fn drain_stderr(child: &mut std::process::Child) -> Option<std::thread::JoinHandle<String>> {
    child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    })
}

/// Stops a server with SIGTERM, checks it exits cleanly, and that its log
/// (drained since `drained` started, or now) never holds `secret`.
async fn stop(
    mut child: std::process::Child,
    secret: &str,
    drained: Option<std::thread::JoinHandle<String>>,
) {
    let drained = drained.or_else(|| drain_stderr(&mut child));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(output.status.success(), "clean exit: {:?}", output.status);
    let stderr = drained
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    assert!(
        !stderr.contains(secret),
        "the password was logged: {stderr}"
    );
}

#[tokio::test]
async fn the_demo_prints_its_admin_credentials_once() {
    let dir = Dir::new("cli");
    let start = || {
        switchyard(&dir.0)
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &database_url(&dir),
            ])
            .env("SWITCHYARD_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the demo")
    };
    let mut child = start();
    let log = drain_stderr(&mut child);
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            let _ = reader.read_line(line);
        }
        lines
    })
    .await
    .expect("read two lines");
    wait_serving(&lines[0]).await;
    let pw = lines[1]
        .strip_prefix("Sign in as admin with password ")
        .and_then(|rest| rest.strip_suffix(" (shown once)\n"))
        .unwrap_or_else(|| panic!("no credentials in {lines:?}"))
        .to_owned();
    assert_eq!(pw.len(), 20);
    assert!(
        signs_in(&lines[0], "admin", &pw).await,
        "the printed password signs in"
    );
    let admin = verifies(&dir, "admin", &pw)
        .await
        .expect("the printed password works");
    assert_eq!(admin.role, server::auth::users::Role::Admin);
    stop(child, &pw, log).await;

    // A second run finds the admin and prints no password.
    let mut child = start();
    let log = drain_stderr(&mut child);
    let stdout = child.stdout.take().expect("stdout");
    let (first, mut reader) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        (line, reader)
    })
    .await
    .expect("read");
    wait_serving(&first).await;
    stop(child, &pw, log).await;
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    assert!(!rest.contains("Sign in"), "{rest}");
}

// ---- `switchyard token …` ----------------------------------------------

/// `switchyard token <args> --database-url <dir's db>`.
fn token(dir: &Dir, args: &[&str]) -> Output {
    run_with_stdin(
        switchyard(&dir.0)
            .arg("token")
            .args(args)
            .args(["--database-url", &database_url(dir)]),
        None,
    )
}

/// The user `token` acts as, checked against the directory's database as
/// the API will.
async fn token_user(dir: &Dir, token: &str) -> Option<server::auth::users::User> {
    let url = server::config::secret::SecretUrl::new(database_url(dir));
    let db = server::db::Database::connect(&url).await.expect("connect");
    let user = server::auth::users::UserStore::new(db.clone())
        .token_user(token)
        .await
        .expect("token_user");
    db.close().await;
    user
}

#[tokio::test]
async fn token_add_list_and_revoke() {
    let dir = Dir::new("cli");
    assert_ok(&user(
        &dir,
        &["add", "ci-bot", "--role", "operator"],
        Some("ci bot password\n"),
    ));

    // add: stdout is the token alone; stderr says it is shown once
    let output = token(&dir, &["add", "ci-bot", "--label", "deploy pipeline"]);
    let stdout = assert_ok(&output);
    let secret = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    assert!(secret.starts_with("sy_"), "{secret}");
    assert_eq!(secret.len(), 3 + 8 + 1 + 43, "{secret}");
    let id = &secret[3..11];
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("will not be shown again"), "{stderr}");
    assert!(stderr.contains(id), "{stderr}");
    assert!(!stderr.contains(secret), "{stderr}");
    let bot = token_user(&dir, secret).await.expect("the token works");
    assert_eq!(bot.name.as_str(), "ci-bot");
    assert_eq!(bot.role, server::auth::users::Role::Operator);

    // the default label
    let other = assert_ok(&token(&dir, &["add", "ci-bot"]));
    assert_ne!(other.trim_end(), secret);

    // list: one row per token, never the secret
    let list = assert_ok(&token(&dir, &["list"]));
    assert!(!list.contains(&secret[12..]), "{list}");
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert_eq!(
        rows[0],
        ["ID", "USER", "CREATED", "LAST_USED", "LABEL"],
        "{list}"
    );
    let row = rows
        .iter()
        .find(|r| r[0] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"));
    assert_eq!(row[1], "ci-bot");
    assert!(row[2].ends_with('Z'), "{list}");
    assert!(row[3].ends_with('Z'), "used once above: {list}");
    assert_eq!(row[4..], ["deploy", "pipeline"]);
    let default = rows.iter().find(|r| r[0] == &other[3..11]).expect("listed");
    assert_eq!(default[3..], ["never", "cli"], "{list}");

    // revoke: silent, the token stops working, a second revoke fails
    assert_eq!(assert_ok(&token(&dir, &["revoke", id])), "");
    assert!(token_user(&dir, secret).await.is_none());
    assert!(token_user(&dir, other.trim_end()).await.is_some());
    assert_user_error(
        &token(&dir, &["revoke", id]),
        &format!("no API token with id \"{id}\""),
        secret,
    );
    let list = assert_ok(&token(&dir, &["list"]));
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn token_command_errors_are_one_line_with_exit_code_1() {
    let dir = Dir::new("cli");
    // Refused before the database is opened.
    assert_user_error(
        &token(&dir, &["add", "bad name!"]),
        "invalid user name \"bad name!\"",
        "sy_",
    );
    assert_user_error(
        &token(&dir, &["add", "ada", "--label", ""]),
        "invalid token label: it is empty",
        "sy_",
    );
    assert_user_error(
        &token(&dir, &["add", "ada", "--label", &"x".repeat(65)]),
        "invalid token label: use at most 64 characters",
        "sy_",
    );
    assert_user_error(
        &token(&dir, &["add", "ada", "--label", "two\nlines"]),
        "invalid token label: it has control characters",
        "sy_",
    );
    assert_user_error(
        &token(&dir, &["revoke", "NOT-AN-ID"]),
        "no API token with id \"NOT-AN-ID\"",
        "sy_",
    );
    assert!(
        !dir.0.join("cli.db").exists(),
        "nothing is opened for bad input"
    );

    // Refused by the database.
    assert_user_error(
        &token(&dir, &["add", "ghost"]),
        "no user named ghost",
        "sy_",
    );
    assert_user_error(
        &token(&dir, &["revoke", "abcd1234"]),
        "no API token with id \"abcd1234\"",
        "sy_",
    );
    assert_eq!(
        assert_ok(&token(&dir, &["list"]))
            .lines()
            .collect::<Vec<_>>(),
        ["ID        USER  CREATED               LAST_USED             LABEL"]
    );
}

#[tokio::test]
async fn the_account_commands_take_postgres_without_redis() {
    let schema = PgSchema::create().await;
    let url = schema.url();
    let dir = Dir::new("cli");
    let added = run_with_stdin(
        switchyard(&dir.0).args([
            "user",
            "add",
            "ci-bot",
            "--role",
            "operator",
            "--database-url",
            &url,
        ]),
        Some("ci bot password\n"),
    );
    let token = run_with_stdin(
        switchyard(&dir.0).args(["token", "add", "ci-bot", "--database-url", &url]),
        None,
    );
    let listed = run_with_stdin(
        switchyard(&dir.0).args(["token", "list", "--database-url", &url]),
        None,
    );
    schema.drop().await;
    assert_ok(&added);
    let secret = assert_ok(&token);
    assert!(secret.starts_with("sy_"), "{secret}");
    let list = assert_ok(&listed);
    assert!(list.contains(&secret[3..11]), "{list}");
    assert!(
        !dir.0.join("switchyard.db").exists(),
        "no SQLite file next to PostgreSQL"
    );
}

#[test]
fn an_embedded_database_in_a_missing_directory_says_so() {
    let dir = Dir::new("cli");
    let missing = dir.0.join("not-there");
    let output = run(switchyard(&dir.0).args([
        "enqueue",
        "emails",
        "welcome",
        "{}",
        "--database-url",
        &format!("sqlite://{}?mode=rwc", missing.join("q.db").display()),
    ]));
    assert_one_line_error(
        &output,
        &format!("(the directory {} does not exist)", missing.display()),
    );
}

#[test]
fn a_listing_value_size_out_of_range_is_a_one_line_error() {
    let dir = Dir::new("cli");
    for bad in ["100", "2000000"] {
        let output = run(switchyard(&dir.0).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url(&dir),
            "--listing-value-bytes",
            bad,
        ]));
        assert_one_line_error(
            &output,
            &format!("--listing-value-bytes must be from 256 to 1048576, not {bad}"),
        );
    }
}
