//! Per-account throttling of wrong passwords, beside the per-address
//! `dashboard.login` limit: a guessing run spread over many addresses
//! (30 wrong passwords for one account in 3 s from 10 addresses) stays
//! under every address's limit but not under the account's.
//!
//! After [`FREE_FAILURES`] wrong passwords for one account within
//! [`WINDOW_MS`], each further attempt must wait `2^(n - FREE_FAILURES)`
//! seconds after the last failure (at most [`MAX_DELAY`]); earlier ones
//! are answered 429 with `Retry-After` and never hashed. It is a delay,
//! not a lockout, and a browser that signed in to this account before
//! (it keeps a device cookie, [`DEVICE_COOKIE`]) is not held back at all,
//! so a guessing run cannot lock the real user out. A cookie rather than
//! an address: behind a reverse proxy every browser has the proxy's.
//!
//! The state is in memory, per dashboard instance, and bounded: at most
//! [`MAX_ACCOUNTS`] names are tracked (names that do not exist too, so
//! the answer does not tell which exist); beyond that the oldest of the
//! accounts no browser signed in to go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The cookie that marks a browser as one that signed in to an account.
pub const DEVICE_COOKIE: &str = "switchyard_device";

/// Wrong passwords an account may get within [`WINDOW_MS`] before
/// attempts are delayed.
pub const FREE_FAILURES: u32 = 5;
/// How long a wrong password counts against its account.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// The longest delay between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Accounts tracked at once.
pub const MAX_ACCOUNTS: usize = 10_000;
/// Browsers remembered per account as ones it signed in from.
const KNOWN_PER_ACCOUNT: usize = 8;
/// How long such a browser is remembered (also its cookie's life).
pub const KNOWN_FOR_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Default)]
struct Account {
    /// Wrong passwords within the window.
    failures: u32,
    /// When the last one was (ms since the epoch).
    last_failure: i64,
    /// The device tokens of browsers that signed in, and when.
    known: Vec<(String, i64)>,
}

impl Account {
    fn knows(&self, device: &str, now: i64) -> bool {
        self.known
            .iter()
            .any(|(known, at)| known == device && now - at < KNOWN_FOR_MS)
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
    /// Whether `account` may try a password at `now` from a browser with
    /// `device` (its device cookie, if any); `Err` carries how long to
    /// wait. An attempt let through while delays apply holds the next one
    /// back by the current delay at once, so attempts sent together do
    /// not all pass before the first failure is counted.
    pub fn check(&self, account: &str, device: Option<&str>, now: i64) -> Result<(), Duration> {
        let mut accounts = self.lock();
        let Some(state) = accounts.get_mut(account) else {
            return Ok(());
        };
        if device.is_some_and(|d| state.knows(d, now)) {
            return Ok(());
        }
        let failures = state.counting(now);
        if failures < FREE_FAILURES {
            return Ok(());
        }
        let delay = delay_after(failures);
        let allowed_at = state.last_failure + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        if now >= allowed_at {
            state.last_failure = now;
            Ok(())
        } else {
            let wait = u64::try_from(allowed_at - now).unwrap_or(0);
            Err(Duration::from_millis(wait))
        }
    }

    /// Counts a wrong password for `account` at `now`.
    pub fn failed(&self, account: &str, now: i64) {
        let mut accounts = self.lock();
        let state = tracked(&mut accounts, account, now);
        state.failures = state.counting(now).saturating_add(1);
        state.last_failure = now;
    }

    /// A right password: the account's failures are forgiven and the
    /// browser is remembered; returns the device token to set as its
    /// cookie (the one it sent, when that is known already).
    pub fn succeeded(&self, account: &str, device: Option<&str>, now: i64) -> String {
        let mut accounts = self.lock();
        let state = tracked(&mut accounts, account, now);
        state.failures = 0;
        let token = match device {
            Some(d) if state.knows(d, now) => d.to_owned(),
            _ => crate::auth::users::random_token(),
        };
        state
            .known
            .retain(|(known, at)| *known != token && now - at < KNOWN_FOR_MS);
        state.known.push((token.clone(), now));
        if state.known.len() > KNOWN_PER_ACCOUNT {
            state.known.remove(0);
        }
        token
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        crate::sync::lock(&self.accounts)
    }
}

/// `account`'s state, tracked from now on; room is made first when the
/// table is full and it is new.
fn tracked<'a>(
    accounts: &'a mut HashMap<String, Account>,
    account: &str,
    now: i64,
) -> &'a mut Account {
    if !accounts.contains_key(account) && accounts.len() >= MAX_ACCOUNTS {
        prune(accounts, now);
    }
    accounts.entry(account.to_owned()).or_default()
}

/// The wait after `failures` wrong passwords (at least [`FREE_FAILURES`]).
fn delay_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(FREE_FAILURES).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// Makes room: forgets accounts with nothing counting and no browser
/// remembered, then, if still full, the older half of those no browser
/// signed in to (made-up names a guessing run fills the table with), so
/// such a run cannot push out a real account's remembered browsers.
fn prune(accounts: &mut HashMap<String, Account>, now: i64) {
    accounts.retain(|_, a| {
        a.counting(now) > 0 || a.known.iter().any(|(_, at)| now - at < KNOWN_FOR_MS)
    });
    if accounts.len() < MAX_ACCOUNTS {
        return;
    }
    let mut strangers: Vec<i64> = accounts
        .values()
        .filter(|a| a.known.is_empty())
        .map(|a| a.last_failure)
        .collect();
    if strangers.is_empty() {
        // Every tracked account has a remembered browser: the oldest go.
        let mut activity: Vec<i64> = accounts.values().map(Account::last_active).collect();
        activity.sort_unstable();
        let cutoff = activity[activity.len() / 2];
        accounts.retain(|_, a| a.last_active() > cutoff);
        return;
    }
    strangers.sort_unstable();
    let cutoff = strangers[strangers.len() / 2];
    accounts.retain(|_, a| !a.known.is_empty() || a.last_failure > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000_000;

    #[test]
    fn wrong_passwords_delay_the_account_exponentially_up_to_a_cap() {
        let throttle = SignInThrottle::default();
        for i in 0..FREE_FAILURES {
            assert_eq!(throttle.check("admin", None, T0 + i64::from(i)), Ok(()));
            throttle.failed("admin", T0 + i64::from(i));
        }
        let last = T0 + i64::from(FREE_FAILURES) - 1;
        assert_eq!(
            throttle.check("admin", None, last + 10),
            Err(Duration::from_millis(990))
        );
        assert_eq!(
            throttle.check("admin", None, last + 1000),
            Ok(()),
            "1 s after the 5th"
        );
        assert!(
            throttle.check("admin", None, last + 1001).is_err(),
            "the attempt let through holds the next one back"
        );
        throttle.failed("admin", last + 1000);
        assert_eq!(
            throttle.check("admin", None, last + 2000),
            Err(Duration::from_millis(1000)),
            "2 s after the 6th"
        );
        for n in 0..20 {
            throttle.failed("admin", last + 3000 + n);
        }
        assert_eq!(
            throttle.check("admin", None, last + 3019),
            Err(MAX_DELAY),
            "capped"
        );
        assert_eq!(throttle.check("someone-else", None, last + 3019), Ok(()));
        assert_eq!(
            throttle.check("admin", None, last + 3019 + WINDOW_MS + 1),
            Ok(()),
            "failures older than the window no longer count"
        );
    }

    #[test]
    fn the_real_user_is_not_locked_out() {
        let throttle = SignInThrottle::default();
        let mine = throttle.succeeded("admin", None, T0);
        for i in 0..50 {
            throttle.failed("admin", T0 + 1 + i);
        }
        assert!(throttle.check("admin", None, T0 + 60).is_err());
        assert!(throttle.check("admin", Some("forged"), T0 + 60).is_err());
        assert_eq!(
            throttle.check("admin", Some(&mine), T0 + 60),
            Ok(()),
            "their own browser"
        );
        assert_eq!(
            throttle.succeeded("admin", Some(&mine), T0 + 61),
            mine,
            "kept"
        );
        assert_eq!(
            throttle.check("admin", None, T0 + 62),
            Ok(()),
            "a success forgives"
        );
    }

    #[test]
    fn memory_is_bounded_and_made_up_names_go_first() {
        let throttle = SignInThrottle::default();
        let mine = throttle.succeeded("admin", None, T0);
        for i in 0..(MAX_ACCOUNTS + 500) {
            throttle.failed(&format!("guess-{i}"), T0 + 1 + i as i64);
        }
        assert!(throttle.lock().len() <= MAX_ACCOUNTS);
        let newest = format!("guess-{}", MAX_ACCOUNTS + 499);
        assert!(throttle.lock().contains_key(&newest), "the newest stay");
        for i in 0..50 {
            throttle.failed("admin", T0 + 20_000 + i);
        }
        assert_eq!(
            throttle.check("admin", Some(&mine), T0 + 20_100),
            Ok(()),
            "the real browser survived the flood of names"
        );
    }
}
