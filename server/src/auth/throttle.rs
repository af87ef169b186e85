//! Per-account throttling of wrong passwords, beside the per-address
//! `dashboard.login` limit: a guessing run spread over many addresses
//! (30 wrong passwords for one account in 3 s from 10 addresses) stays
//! under every address's limit but not under the account's.
//!
//! After [`FREE_FAILURES`] wrong passwords for one account within
//! [`WINDOW_MS`], each further attempt must wait `2^(n - FREE_FAILURES)`
//! seconds after the last failure (at most [`MAX_DELAY`]); earlier ones
//! are answered 429 with `Retry-After` and never hashed. It is a delay,
//! not a lockout, and an address this account signed in from before is
//! not held back at all, so a guessing run cannot lock the real user out.
//!
//! The state is in memory, per dashboard instance, and bounded: at most
//! [`MAX_ACCOUNTS`] names are tracked (names that do not exist too, so
//! the answer does not tell which exist); beyond that the oldest go.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Wrong passwords an account may get within [`WINDOW_MS`] before
/// attempts are delayed.
pub const FREE_FAILURES: u32 = 5;
/// How long a wrong password counts against its account.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// The longest delay between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Accounts tracked at once.
pub const MAX_ACCOUNTS: usize = 10_000;
/// Addresses remembered per account as where it signed in from.
const KNOWN_PER_ACCOUNT: usize = 8;
/// How long such an address is remembered.
const KNOWN_FOR_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Default)]
struct Account {
    /// Wrong passwords within the window.
    failures: u32,
    /// When the last one was (ms since the epoch).
    last_failure: i64,
    /// Where the account signed in from, and when last.
    known: Vec<(IpAddr, i64)>,
}

impl Account {
    fn knows(&self, ip: IpAddr, now: i64) -> bool {
        self.known
            .iter()
            .any(|(known, at)| *known == ip && now - at < KNOWN_FOR_MS)
    }

    /// The last wrong password or sign-in, whichever is later.
    fn last_active(&self) -> i64 {
        let signed_in = self.known.iter().map(|(_, at)| *at).max().unwrap_or(0);
        signed_in.max(self.last_failure)
    }

    /// Wrong passwords still counting at `now`.
    fn counting(&self, now: i64) -> u32 {
        if now - self.last_failure > WINDOW_MS {
            0
        } else {
            self.failures
        }
    }
}

/// The throttle; one per server, shared by every request.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    accounts: Mutex<HashMap<String, Account>>,
}

impl SignInThrottle {
    /// Whether `account` may try a password from `ip` at `now`; `Err`
    /// carries how long to wait.
    pub fn check(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Result<(), Duration> {
        let accounts = self.lock();
        let Some(state) = accounts.get(account) else {
            return Ok(());
        };
        if ip.is_some_and(|ip| state.knows(ip, now)) {
            return Ok(());
        }
        let failures = state.counting(now);
        if failures < FREE_FAILURES {
            return Ok(());
        }
        let delay = delay_after(failures);
        let allowed_at = state.last_failure + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        if now >= allowed_at {
            Ok(())
        } else {
            let wait = u64::try_from(allowed_at - now).unwrap_or(0);
            Err(Duration::from_millis(wait))
        }
    }

    /// Counts a wrong password for `account` at `now`.
    pub fn failed(&self, account: &str, now: i64) {
        let mut accounts = self.lock();
        if !accounts.contains_key(account) && accounts.len() >= MAX_ACCOUNTS {
            prune(&mut accounts, now);
        }
        let state = accounts.entry(account.to_owned()).or_default();
        state.failures = state.counting(now).saturating_add(1);
        state.last_failure = now;
    }

    /// A right password: the account's failures are forgiven and `ip` is
    /// remembered as one of its own.
    pub fn succeeded(&self, account: &str, ip: Option<IpAddr>, now: i64) {
        let mut accounts = self.lock();
        if !accounts.contains_key(account) && accounts.len() >= MAX_ACCOUNTS {
            prune(&mut accounts, now);
        }
        let state = accounts.entry(account.to_owned()).or_default();
        state.failures = 0;
        if let Some(ip) = ip {
            state
                .known
                .retain(|(known, at)| *known != ip && now - at < KNOWN_FOR_MS);
            state.known.push((ip, now));
            if state.known.len() > KNOWN_PER_ACCOUNT {
                state.known.remove(0);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The wait after `failures` wrong passwords (at least [`FREE_FAILURES`]).
fn delay_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(FREE_FAILURES).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// Makes room: forgets accounts with nothing counting and nothing known,
/// then, if still full, the half with the oldest activity.
fn prune(accounts: &mut HashMap<String, Account>, now: i64) {
    accounts.retain(|_, a| {
        a.counting(now) > 0 || a.known.iter().any(|(_, at)| now - at < KNOWN_FOR_MS)
    });
    if accounts.len() < MAX_ACCOUNTS {
        return;
    }
    let mut activity: Vec<i64> = accounts.values().map(Account::last_active).collect();
    activity.sort_unstable();
    let cutoff = activity[activity.len() / 2];
    accounts.retain(|_, a| a.last_active() > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000_000;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn wrong_passwords_delay_the_account_exponentially_up_to_a_cap() {
        let throttle = SignInThrottle::default();
        let attacker = ip("203.0.113.9");
        for i in 0..FREE_FAILURES {
            assert_eq!(throttle.check("admin", attacker, T0 + i64::from(i)), Ok(()));
            throttle.failed("admin", T0 + i64::from(i));
        }
        let last = T0 + i64::from(FREE_FAILURES) - 1;
        assert_eq!(
            throttle.check("admin", attacker, last + 10),
            Err(Duration::from_millis(990))
        );
        assert_eq!(
            throttle.check("admin", attacker, last + 1000),
            Ok(()),
            "1 s after the 5th"
        );
        throttle.failed("admin", last + 1000);
        assert_eq!(
            throttle.check("admin", attacker, last + 2000),
            Err(Duration::from_millis(1000)),
            "2 s after the 6th"
        );
        for n in 0..20 {
            throttle.failed("admin", last + 3000 + n);
        }
        assert_eq!(
            throttle.check("admin", attacker, last + 3019),
            Err(MAX_DELAY),
            "capped"
        );
        assert_eq!(
            throttle.check("someone-else", attacker, last + 3019),
            Ok(())
        );
        assert_eq!(
            throttle.check("admin", attacker, last + 3019 + WINDOW_MS + 1),
            Ok(()),
            "failures older than the window no longer count"
        );
    }

    #[test]
    fn the_real_user_is_not_locked_out() {
        let throttle = SignInThrottle::default();
        let home = ip("198.51.100.7");
        throttle.succeeded("admin", home, T0);
        for i in 0..50 {
            throttle.failed("admin", T0 + 1 + i);
        }
        assert!(throttle.check("admin", ip("203.0.113.9"), T0 + 60).is_err());
        assert_eq!(
            throttle.check("admin", home, T0 + 60),
            Ok(()),
            "from where they signed in before"
        );
        throttle.succeeded("admin", home, T0 + 61);
        assert_eq!(
            throttle.check("admin", ip("203.0.113.9"), T0 + 62),
            Ok(()),
            "a success forgives"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let throttle = SignInThrottle::default();
        for i in 0..(MAX_ACCOUNTS + 500) {
            throttle.failed(&format!("guess-{i}"), T0 + i as i64);
        }
        assert!(throttle.lock().len() <= MAX_ACCOUNTS);
        assert!(
            throttle
                .lock()
                .contains_key(&format!("guess-{}", MAX_ACCOUNTS + 499)),
            "the newest stay"
        );
    }
}
