//! Redis for tests: the shared server, and a private `redis-server` that a
//! test may stop and start (outages, passwords, TLS) without disturbing the
//! tests that share the other.

/// Where the shared test Redis runs (CI starts it when it is not running).
/// Tests keep apart on it by key prefix.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

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
    _dir: crate::TempDir,
}

impl PrivateCluster {
    /// Starts the nodes, joins them into one cluster covering all 16,384
    /// slots, and waits (up to 30 s) until every node says the cluster is
    /// `ok`.
    pub async fn started(masters: usize, replicas: usize) -> Self {
        assert!(masters >= 3, "a Redis Cluster needs at least three masters");
        let dir = crate::TempDir::new("cluster");
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            let port = free_port();
            // The bus port is chosen too: the default, port + 10,000, may
            // be taken or beyond 65,535.
            let bus = free_port().to_string();
            let config = dir.0.join(format!("nodes-{port}.conf"));
            let config = config.to_string_lossy().into_owned();
            let dir_text = dir.0.to_string_lossy().into_owned();
            nodes.push(PrivateRedis::start_with(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    bus.as_str(),
                    "--cluster-config-file",
                    config.as_str(),
                    "--cluster-node-timeout",
                    "2000",
                    "--dir",
                    dir_text.as_str(),
                ],
                None,
            ));
        }
        for node in &nodes {
            node.ready().await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let replicas_text = replicas.to_string();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend([
            "--cluster-replicas",
            replicas_text.as_str(),
            "--cluster-yes",
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
            _dir: dir,
        };
        cluster.wait_ok().await;
        cluster
    }

    /// Waits (up to 30 s) until every running node reports
    /// `cluster_state:ok`.
    pub async fn wait_ok(&self) {
        for _ in 0..600 {
            let mut all = true;
            for node in &self.nodes {
                if cluster_state(node).await.as_deref() != Some("ok") {
                    all = false;
                    break;
                }
            }
            if all {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the private cluster did not reach cluster_state:ok within 30 s");
    }

    /// `redis+cluster://` URL naming every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
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
