//! Redis for tests: the shared server, and a private `redis-server` that a
//! test may stop and start (outages, passwords, TLS) without disturbing the
//! tests that share the other.

/// Where the shared test Redis runs (CI starts it when it is not running).
/// Tests keep apart on it by key prefix.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The URL of the Redis Cluster the tests share (three masters with a
/// replica each, started by `scripts/cluster` from `scripts/prepare`):
/// `SWITCHYARD_TEST_CLUSTER` when set, else the URL the script wrote to
/// `$SWITCHYARD_CLUSTER_DIR/url` (default `/tmp/switchyard-cluster/url`).
/// Tests keep apart on it by key prefix, as on the shared server.
pub fn cluster_url() -> String {
    if let Ok(url) = std::env::var("SWITCHYARD_TEST_CLUSTER") {
        return url;
    }
    let dir = std::env::var("SWITCHYARD_CLUSTER_DIR")
        .unwrap_or_else(|_| "/tmp/switchyard-cluster".to_owned());
    let path = std::path::Path::new(&dir).join("url");
    match std::fs::read_to_string(&path) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "no shared test Redis Cluster ({} is missing): run scripts/prepare or scripts/cluster start",
            path.display()
        ),
    }
}

/// A connection for test bookkeeping (inspecting and deleting keys) on
/// either the shared server or a cluster, chosen by the URL's scheme.
/// No response timeout: a scan of a Redis other tests fill at the same
/// time may be slow, and a cleanup that silently times out leaks keys.
#[derive(Clone)]
pub enum RawConn {
    Plain(::redis::aio::MultiplexedConnection),
    Cluster(::redis::cluster_async::ClusterConnection),
}

impl ::redis::aio::ConnectionLike for RawConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a ::redis::Cmd,
    ) -> ::redis::RedisFuture<'a, ::redis::Value> {
        match self {
            Self::Plain(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> ::redis::RedisFuture<'a, Vec<::redis::Value>> {
        match self {
            Self::Plain(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// The seed URLs of a `redis+cluster://h:p,h:p` URL (no credentials: the
/// test clusters have none).
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let hosts = url.strip_prefix("redis+cluster://")?;
    Some(
        hosts
            .split(',')
            .map(|h| format!("redis://{}", h.trim_end_matches('/')))
            .collect(),
    )
}

/// A [`RawConn`] to `url` (`redis://…` or `redis+cluster://…`).
pub async fn raw(url: &str) -> RawConn {
    match cluster_seeds(url) {
        Some(seeds) => RawConn::Cluster(
            ::redis::cluster::ClusterClient::new(seeds)
                .expect("cluster client")
                .get_async_connection()
                .await
                .expect("raw connection to the test cluster"),
        ),
        None => {
            let config = ::redis::AsyncConnectionConfig::new().set_response_timeout(None);
            RawConn::Plain(
                ::redis::Client::open(url)
                    .expect("client")
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .expect("raw connection to the test Redis"),
            )
        }
    }
}

/// Every key matching a glob `pattern`, by `SCAN` (on every master of a
/// cluster), so a busy shared Redis is not blocked.
pub async fn keys_matching(url: &str, pattern: &str) -> Vec<String> {
    let nodes = match cluster_seeds(url) {
        Some(seeds) => masters_of(&seeds[0]).await,
        None => vec![url.to_owned()],
    };
    let mut keys = Vec::new();
    for node in nodes {
        let mut conn = match raw(&node).await {
            RawConn::Plain(c) => c,
            RawConn::Cluster(_) => unreachable!("a node URL is plain"),
        };
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    keys
}

/// Plain URLs of a cluster's masters, asked of the node at `seed`.
async fn masters_of(seed: &str) -> Vec<String> {
    let RawConn::Plain(mut conn) = raw(seed).await else {
        unreachable!("a seed URL is plain")
    };
    let nodes: String = ::redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER NODES");
    nodes
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|f| f.contains("master"))
        })
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|a| a.split('@').next())
        .map(|a| format!("redis://{a}"))
        .collect()
}

/// Deletes every key matching `pattern` (one key per command on a
/// cluster, where keys of a test spread over slots).
pub async fn delete_matching(url: &str, pattern: &str) {
    let keys = keys_matching(url, pattern).await;
    let mut conn = raw(url).await;
    for key in keys {
        let _: () = ::redis::cmd("UNLINK")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("UNLINK");
    }
}

/// A private Redis on a free port, so a test can stop and restart it
/// without disturbing the shared one (outage and recovery tests).
pub struct PrivateRedis {
    port: u16,
    child: std::process::Child,
    /// How clients reach it, when not plain `redis://127.0.0.1:<port>`
    /// (a password, TLS).
    url: Option<String>,
}

impl PrivateRedis {
    /// Starts `redis-server` on `port` without persistence.
    pub fn start(port: u16) -> Self {
        Self::start_with(port, &[], None)
    }

    /// Starts `redis-server` on `port` with `extra` options (e.g.
    /// `--requirepass`, or TLS options with `--port 0`), reached at `url`
    /// (default `redis://127.0.0.1:<port>`).
    pub fn start_with(port: u16, extra: &[&str], url: Option<String>) -> Self {
        let port_text = port.to_string();
        let mut args = vec![
            "--port",
            port_text.as_str(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        args.extend_from_slice(extra);
        let child = std::process::Command::new("redis-server")
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed?)");
        Self { port, child, url }
    }

    /// A server on a free port, answering.
    pub async fn started() -> Self {
        let server = Self::start(free_port());
        server.ready().await;
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("redis://127.0.0.1:{}", self.port))
    }

    /// Its port, to start it again after [`PrivateRedis::stop`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (up to 10 s) until it answers PING.
    pub async fn ready(&self) {
        for _ in 0..200 {
            if self.answers().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "the private redis-server on port {} did not start",
            self.port
        );
    }

    async fn answers(&self) -> bool {
        let Ok(client) = ::redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }

    /// Kills it (the outage).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A private Redis Cluster on loopback: `masters` primaries (at least
/// three, as `redis-cli --cluster create` requires), each with `replicas`
/// replicas, every node a `redis-server --cluster-enabled yes` on a free
/// port with its node file in a directory of its own. The nodes are
/// stopped by pid when it is dropped, so a test can also kill one (a
/// failover) without touching the shared Redis or another test's cluster.
pub struct PrivateCluster {
    nodes: Vec<PrivateRedis>,
    masters: usize,
    security: ClusterSecurity,
    _dir: crate::TempDir,
}

/// A self-signed certificate and its key for `127.0.0.1`, written into
/// `dir` by `openssl` (valid one day), for TLS tests.
pub fn self_signed_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(made.success(), "openssl made a certificate");
    (cert, key)
}

/// The `redis-server` options serving TLS with `cert` and `key` (the
/// certificate is its own CA; clients need no certificate).
pub fn tls_options(cert: &std::path::Path, key: &std::path::Path) -> Vec<String> {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    [
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &cert,
        "--tls-auth-clients",
        "no",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// How a private cluster's nodes are reached: a password (`requirepass`,
/// and `masterauth` for replication) and TLS with a certificate and key
/// (clients, the cluster bus and replication all over TLS; clients need
/// no certificate of their own).
#[derive(Debug, Clone, Default)]
pub struct ClusterSecurity {
    pub password: Option<String>,
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl PrivateCluster {
    /// Starts the nodes, joins them into one cluster covering all 16,384
    /// slots, and waits (up to 30 s) until every node says the cluster is
    /// `ok`.
    pub async fn started(masters: usize, replicas: usize) -> Self {
        Self::started_with(masters, replicas, ClusterSecurity::default()).await
    }

    /// As [`PrivateCluster::started`], with a password and/or TLS.
    pub async fn started_with(masters: usize, replicas: usize, security: ClusterSecurity) -> Self {
        assert!(masters >= 3, "a Redis Cluster needs at least three masters");
        let dir = crate::TempDir::new("cluster");
        let mut nodes = Vec::new();
        let mut secure: Vec<String> = Vec::new();
        if let Some(password) = &security.password {
            secure.extend(["--requirepass".into(), password.clone()]);
            secure.extend(["--masterauth".into(), password.clone()]);
        }
        if let Some((cert, key)) = &security.tls {
            secure.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(str::to_owned));
            secure.extend(tls_options(cert, key));
        }
        for _ in 0..masters * (1 + replicas) {
            let port = free_port();
            // The bus port is chosen too: the default, port + 10,000, may
            // be taken or beyond 65,535.
            let bus = free_port().to_string();
            let config = dir.0.join(format!("nodes-{port}.conf"));
            let config = config.to_string_lossy().into_owned();
            let dir_text = dir.0.to_string_lossy().into_owned();
            let port_text = port.to_string();
            let mut args: Vec<&str> = vec![
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                bus.as_str(),
                "--cluster-config-file",
                config.as_str(),
                "--cluster-node-timeout",
                "2000",
                // Replicas sync at once instead of after 5 s, so a
                // failover test need not wait for them.
                "--repl-diskless-sync-delay",
                "0",
                "--dir",
                dir_text.as_str(),
            ];
            if security.tls.is_some() {
                args.extend(["--port", "0", "--tls-port", port_text.as_str()]);
            }
            args.extend(secure.iter().map(String::as_str));
            let auth = security
                .password
                .as_ref()
                .map_or(String::new(), |p| format!(":{p}@"));
            let url = if security.tls.is_some() {
                format!("rediss://{auth}127.0.0.1:{port}/#insecure")
            } else {
                format!("redis://{auth}127.0.0.1:{port}")
            };
            nodes.push(PrivateRedis::start_with(port, &args, Some(url)));
        }
        for node in &nodes {
            node.ready().await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let replicas_text = replicas.to_string();
        let mut args: Vec<String> = Vec::new();
        if let Some(password) = &security.password {
            args.extend(["-a".into(), password.clone(), "--no-auth-warning".into()]);
        }
        if security.tls.is_some() {
            args.extend(["--tls".into(), "--insecure".into()]);
        }
        args.extend(["--cluster".into(), "create".into()]);
        args.extend(addresses.iter().cloned());
        args.extend([
            "--cluster-replicas".into(),
            replicas_text,
            "--cluster-yes".into(),
        ]);
        let created = tokio::process::Command::new("redis-cli")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .expect("redis-cli runs (is it installed?)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = Self {
            nodes,
            masters,
            security,
            _dir: dir,
        };
        cluster.wait_ok().await;
        cluster
    }

    /// Waits (up to 30 s) until every running node reports
    /// `cluster_state:ok` and every replica has synced with its master (a
    /// replica that has not cannot take over).
    pub async fn wait_ok(&self) {
        let replicas = self.nodes.len() - self.masters;
        for _ in 0..600 {
            let mut all = true;
            let mut synced = 0;
            for node in &self.nodes {
                if cluster_state(node).await.as_deref() != Some("ok") {
                    all = false;
                    break;
                }
                synced += usize::from(replica_synced(node).await);
            }
            all &= synced >= replicas;
            if all {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the private cluster did not reach cluster_state:ok within 30 s");
    }

    /// `redis+cluster://` URL naming every node as a seed
    /// (`rediss+cluster://…/#insecure` with TLS, the certificate being
    /// self-signed; with the password when there is one).
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let auth = self
            .security
            .password
            .as_ref()
            .map_or(String::new(), |p| format!(":{p}@"));
        match self.security.tls {
            Some(_) => format!("rediss+cluster://{auth}{}/#insecure", seeds.join(",")),
            None => format!("redis+cluster://{auth}{}", seeds.join(",")),
        }
    }

    /// Plain URLs of the nodes, masters first as created.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(PrivateRedis::url).collect()
    }

    /// How many masters it was created with.
    pub fn masters(&self) -> usize {
        self.masters
    }

    /// Kills node `i` (an outage or a failover).
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].stop();
    }
}

/// Whether a node is a replica whose link to its master is up.
async fn replica_synced(node: &PrivateRedis) -> bool {
    let Ok(client) = ::redis::Client::open(node.url()) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let info: String = ::redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    info.contains("role:slave") && info.contains("master_link_status:up")
}

/// A node's `cluster_state` from `CLUSTER INFO`, or `None` when it does
/// not answer.
async fn cluster_state(node: &PrivateRedis) -> Option<String> {
    let client = ::redis::Client::open(node.url()).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = ::redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("cluster_state:"))
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::PrivateCluster;

    /// The cluster the Redis Cluster tests start: three masters that
    /// cover every slot between them, and a URL naming each node.
    #[tokio::test]
    async fn a_private_cluster_covers_every_slot() {
        let cluster = PrivateCluster::started(3, 0).await;
        let urls = cluster.node_urls();
        assert_eq!(urls.len(), 3);
        let client = ::redis::Client::open(urls[0].as_str()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let info: String = ::redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await
            .expect("cluster info");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
        assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
        assert_eq!(cluster.url().matches(',').count(), 2);
        assert_eq!(cluster.masters(), 3);
    }
}
