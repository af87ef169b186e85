//! Judging decisions against an exact sliding-window log, and the two
//! common approximations simulated for comparison.

use std::collections::VecDeque;

/// One decided request: which key, when (ms, on the deciding clock), and
/// whether it was admitted.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub key: u32,
    pub at_ms: i64,
    pub allowed: bool,
}

/// How a set of decisions compares with the exact log.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    pub requests: u64,
    pub allowed: u64,
    /// Admitted where the exact log rejects, per class index.
    pub wrongly_allowed: [u64; 3],
    /// Rejected where the exact log admits, per class index.
    pub wrongly_rejected: [u64; 3],
    /// Requests and admissions per class index.
    pub class_requests: [u64; 3],
    pub class_allowed: [u64; 3],
    /// Most admissions of one key in any window `(x - window, x]`.
    pub max_in_window: u64,
    /// Keys whose admissions exceed the capacity in some window.
    pub keys_over_capacity: u64,
}

impl Verdict {
    pub fn total_wrongly_allowed(&self) -> u64 {
        self.wrongly_allowed.iter().sum()
    }

    pub fn total_wrongly_rejected(&self) -> u64 {
        self.wrongly_rejected.iter().sum()
    }
}

/// Compares `outcomes` with an exact sliding-window log run over the same
/// timestamps. Per key, in time order; requests of one key within one ms
/// are compared as a group (how many the log admits there against how many
/// were admitted), since their order inside a ms is not observable. The
/// reference runs on its own admissions, independently of the judged ones.
///
/// Also checks the invariant directly on the judged admissions: at most
/// `capacity` in any window of length `window_ms`.
pub fn judge(
    outcomes: &[Outcome],
    class_of: impl Fn(u32) -> usize,
    keys: usize,
    window_ms: i64,
    capacity: u64,
) -> Verdict {
    let mut by_key: Vec<Vec<(i64, bool)>> = vec![Vec::new(); keys];
    for o in outcomes {
        by_key[o.key as usize].push((o.at_ms, o.allowed));
    }
    let mut v = Verdict::default();
    for (key, mut list) in by_key.into_iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let class = class_of(key as u32);
        list.sort_unstable_by_key(|&(at, _)| at);
        let mut log: VecDeque<i64> = VecDeque::new();
        let mut i = 0;
        while i < list.len() {
            let at = list[i].0;
            let mut j = i;
            let mut admitted = 0u64;
            while j < list.len() && list[j].0 == at {
                admitted += u64::from(list[j].1);
                j += 1;
            }
            let group = (j - i) as u64;
            while log.front().is_some_and(|&t| t <= at - window_ms) {
                log.pop_front();
            }
            let reference = capacity.saturating_sub(log.len() as u64).min(group);
            for _ in 0..reference {
                log.push_back(at);
            }
            v.wrongly_allowed[class] += admitted.saturating_sub(reference);
            v.wrongly_rejected[class] += reference.saturating_sub(admitted);
            v.requests += group;
            v.allowed += admitted;
            v.class_requests[class] += group;
            v.class_allowed[class] += admitted;
            i = j;
        }
        let admitted: Vec<i64> = list.iter().filter(|o| o.1).map(|o| o.0).collect();
        let most = max_in_window(&admitted, window_ms);
        v.max_in_window = v.max_in_window.max(most);
        if most > capacity {
            v.keys_over_capacity += 1;
        }
    }
    v
}

/// Most timestamps of the sorted `admitted` inside any `(x - window, x]`.
fn max_in_window(admitted: &[i64], window_ms: i64) -> u64 {
    let mut most = 0;
    let mut lo = 0;
    for (hi, &t) in admitted.iter().enumerate() {
        while admitted[lo] <= t - window_ms {
            lo += 1;
        }
        // For the last of equal timestamps this counts all of them.
        most = most.max((hi - lo + 1) as u64);
    }
    most
}

/// A request of the simulation: key and time (ms), in time order.
pub type Request = (u32, i64);

/// The exact sliding log itself, in process (must judge as perfect).
pub fn simulate_exact(requests: &[Request], keys: usize, window_ms: i64, cap: u64) -> Vec<Outcome> {
    let mut logs: Vec<VecDeque<i64>> = vec![VecDeque::new(); keys];
    requests
        .iter()
        .map(|&(key, at)| {
            let log = &mut logs[key as usize];
            while log.front().is_some_and(|&t| t <= at - window_ms) {
                log.pop_front();
            }
            let allowed = (log.len() as u64) < cap;
            if allowed {
                log.push_back(at);
            }
            Outcome {
                key,
                at_ms: at,
                allowed,
            }
        })
        .collect()
}

/// A fixed-window counter: one counter per key and window
/// `[k * window, (k + 1) * window)`, admitting while it is below `cap`.
pub fn simulate_fixed(requests: &[Request], keys: usize, window_ms: i64, cap: u64) -> Vec<Outcome> {
    let mut state: Vec<(i64, u64)> = vec![(i64::MIN, 0); keys];
    requests
        .iter()
        .map(|&(key, at)| {
            let (window, count) = &mut state[key as usize];
            let k = at.div_euclid(window_ms);
            if k != *window {
                *window = k;
                *count = 0;
            }
            let allowed = *count < cap;
            if allowed {
                *count += 1;
            }
            Outcome {
                key,
                at_ms: at,
                allowed,
            }
        })
        .collect()
}

/// The sliding-window counter approximation: the previous fixed window's
/// count weighted by how much of it the sliding window still overlaps,
/// plus the current window's count; a request is admitted if that estimate
/// plus itself stays within `cap`. Only admissions are counted.
pub fn simulate_sliding_counter(
    requests: &[Request],
    keys: usize,
    window_ms: i64,
    cap: u64,
) -> Vec<Outcome> {
    // (current window index, its count, previous window's count)
    let mut state: Vec<(i64, u64, u64)> = vec![(i64::MIN, 0, 0); keys];
    requests
        .iter()
        .map(|&(key, at)| {
            let (window, current, previous) = &mut state[key as usize];
            let k = at.div_euclid(window_ms);
            if k != *window {
                *previous = if k == window.saturating_add(1) {
                    *current
                } else {
                    0
                };
                *current = 0;
                *window = k;
            }
            let elapsed = at - k * window_ms;
            // previous * (window - elapsed) / window + current + 1 <= cap,
            // in integers.
            let estimate = *previous as i128 * i128::from(window_ms - elapsed)
                + (*current as i128 + 1) * i128::from(window_ms);
            let allowed = estimate <= cap as i128 * i128::from(window_ms);
            if allowed {
                *current += 1;
            }
            Outcome {
                key,
                at_ms: at,
                allowed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(at_ms: i64, allowed: bool) -> Outcome {
        Outcome {
            key: 0,
            at_ms,
            allowed,
        }
    }

    #[test]
    fn exact_decisions_judge_as_perfect() {
        let requests: Vec<Request> = (0..200).map(|i| (0, i * 37)).collect();
        let out = simulate_exact(&requests, 1, 1000, 5);
        let v = judge(&out, |_| 0, 1, 1000, 5);
        assert_eq!(v.total_wrongly_allowed() + v.total_wrongly_rejected(), 0);
        assert_eq!(v.max_in_window, 5);
        assert_eq!(v.keys_over_capacity, 0);
    }

    #[test]
    fn same_ms_requests_compare_as_a_group() {
        // Capacity 2, three requests in one ms: any two admitted is right.
        let out = [outcome(10, false), outcome(10, true), outcome(10, true)];
        let v = judge(&out, |_| 0, 1, 1000, 2);
        assert_eq!(v.total_wrongly_allowed() + v.total_wrongly_rejected(), 0);
        let out = [outcome(10, true), outcome(10, true), outcome(10, true)];
        let v = judge(&out, |_| 0, 1, 1000, 2);
        assert_eq!(v.total_wrongly_allowed(), 1);
        assert_eq!(v.max_in_window, 3);
        assert_eq!(v.keys_over_capacity, 1);
    }

    #[test]
    fn window_is_half_open() {
        // Admissions at 0 and 1000 with window 1000 never share a window.
        let out = [outcome(0, true), outcome(1000, true), outcome(1999, false)];
        let v = judge(&out, |_| 0, 1, 1000, 1);
        assert_eq!(v.total_wrongly_allowed() + v.total_wrongly_rejected(), 0);
        assert_eq!(v.max_in_window, 1);
    }

    #[test]
    fn fixed_window_doubles_across_a_boundary() {
        let requests: Vec<Request> = (0..4).map(|i| (0, 998 + i)).collect();
        let out = simulate_fixed(&requests, 1, 1000, 2);
        assert!(out.iter().all(|o| o.allowed));
        let v = judge(&out, |_| 0, 1, 1000, 2);
        assert_eq!(v.total_wrongly_allowed(), 2);
        assert_eq!(v.max_in_window, 4);
    }

    #[test]
    fn sliding_counter_weights_the_previous_window() {
        // 2 admitted late in window 0; at 1500 half of them still count.
        let requests = [(0, 900), (0, 950), (0, 1500), (0, 1501)];
        let out = simulate_sliding_counter(&requests, 1, 1000, 2);
        let allowed: Vec<bool> = out.iter().map(|o| o.allowed).collect();
        assert_eq!(allowed, [true, true, true, false]);
    }
}
