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
