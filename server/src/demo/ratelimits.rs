//! Simulated API clients for `switchyard demo`: a service's per-plan
//! limits with clients well under them, one near its limit, a scraper that
//! keeps hitting it until it is blocked, and a password-guessing address on
//! the login limit, so the Rate limits page shows every state.

use std::time::Duration;

use coord::CoordError;
use coord::ratelimit::{Policy, RateLimiter};
use tokio::task::JoinHandle;

use crate::ratelimits::RateLimits;

/// How often the simulated clients act.
const TICK: Duration = Duration::from_millis(100);

/// One simulated client: the policy it is limited by, its key, and its
/// average requests per second.
struct Client {
    policy: &'static str,
    key: &'static str,
    per_second: f64,
    /// Fractional requests carried over between ticks.
    carry: f64,
}

/// The demo service's policies: a free and a paid plan (a higher limit for
/// one role is another policy), and a login limit that blocks.
fn policies() -> Result<Vec<Policy>, CoordError> {
    Ok(vec![
        Policy::new("demo.api.free", 30, Duration::from_secs(10))?.with_block(
            20,
            Duration::from_secs(30),
            Duration::from_secs(60),
        )?,
        Policy::new("demo.api.pro", 120, Duration::from_secs(10))?.with_burst(30)?,
        Policy::new("demo.login", 5, Duration::from_secs(60))?.with_block(
            5,
            Duration::from_secs(60),
            Duration::from_secs(120),
        )?,
    ])
}

fn clients() -> Vec<Client> {
    let client = |policy, key, per_second| Client {
        policy,
        key,
        per_second,
        carry: 0.0,
    };
    vec![
        client("demo.api.free", "client-7f3a", 0.8),
        client("demo.api.free", "client-19bc", 1.5),
        client("demo.api.free", "client-c402", 2.7),
        client("demo.api.free", "scraper-203.0.113.9", 6.0),
        client("demo.api.pro", "acme-corp", 9.0),
        client("demo.api.pro", "globex", 4.0),
        client("demo.api.pro", "initech", 13.5),
        client("demo.login", "198.51.100.23", 0.5),
        client("demo.login", "alice@example.com", 0.02),
    ]
}

/// The running simulated clients.
pub struct RateLimitDemo {
    task: JoinHandle<()>,
}

impl RateLimitDemo {
    /// Registers the demo policies on the deployment's backend and starts
    /// the clients.
    pub async fn start(limits: &RateLimits) -> Result<Self, CoordError> {
        let limiter = RateLimiter::new(limits.backend.clone(), policies()?)?;
        limiter.register().await?;
        let task = tokio::spawn(run(limiter));
        Ok(Self { task })
    }

    /// Stops the clients.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn run(limiter: RateLimiter) {
    let mut clients = clients();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut phase: f64 = 0.0;
    loop {
        tick.tick().await;
        phase += TICK.as_secs_f64();
        for client in &mut clients {
            // Traffic swells and ebbs over a couple of minutes, so the
            // chart moves and the near-limit client crosses its limit now
            // and then.
            let swell = 1.0 + 0.35 * (phase / 40.0 + client.per_second).sin();
            client.carry += client.per_second * swell * TICK.as_secs_f64();
            while client.carry >= 1.0 {
                client.carry -= 1.0;
                if let Err(e) = limiter.check(client.policy, client.key).await {
                    tracing::debug!("demo rate-limit check failed: {e}");
                }
            }
        }
    }
}
