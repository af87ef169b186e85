//! The recorded traffic trace: generated once from a seed, so every replay
//! (and every later run with the same seed and rand version) sees exactly
//! the same requests at the same offsets.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Clients that stay under the limit: a steady 2 to 8 requests/s each,
/// every interval jittered by ±40%.
pub const STEADY_KEYS: usize = 240;
/// Clients that send bursts of 12 to 45 requests (around and above the
/// capacity of 25) within 20 to 400 ms, then pause 0.2 to 2.5 s, at random
/// phases, so bursts straddle every window alignment.
pub const BURSTY_KEYS: usize = 90;
/// Clients far over the limit: Poisson arrivals at 40 to 150 requests/s.
pub const ABUSIVE_KEYS: usize = 30;

/// What kind of client a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Steady,
    Bursty,
    Abusive,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Steady, Class::Bursty, Class::Abusive];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Steady => "steady (2–8/s)",
            Class::Bursty => "bursty (12–45 in ≤0.4 s)",
            Class::Abusive => "abusive (40–150/s)",
        }
    }
}

/// One request of the trace.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Offset from the start of the trace, in microseconds.
    pub at_us: u64,
    /// Index into [`Trace::keys`].
    pub key: u32,
    /// Which of the concurrent replayers (service instances) sends it.
    pub replayer: u8,
}

/// The whole trace, events in time order.
pub struct Trace {
    pub keys: Vec<(String, Class)>,
    pub events: Vec<Event>,
}

impl Trace {
    /// Generates `secs` seconds of traffic, each request assigned at random
    /// to one of `replayers` instances (a load balancer spreading one
    /// client's requests over all of them).
    pub fn generate(seed: u64, secs: u64, replayers: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let end = secs * 1_000_000;
        let mut keys = Vec::new();
        let mut times: Vec<(u64, u32)> = Vec::new();
        let classes = std::iter::repeat_n(Class::Steady, STEADY_KEYS)
            .chain(std::iter::repeat_n(Class::Bursty, BURSTY_KEYS))
            .chain(std::iter::repeat_n(Class::Abusive, ABUSIVE_KEYS));
        for (i, class) in classes.enumerate() {
            let key = i as u32;
            keys.push((format!("{}-{i}", class_tag(class)), class));
            match class {
                Class::Steady => {
                    let period = 1e6 / rng.random_range(2.0..8.0);
                    let mut t = rng.random_range(0.0..period);
                    while (t as u64) < end {
                        times.push((t as u64, key));
                        t += period * rng.random_range(0.6..1.4);
                    }
                }
                Class::Bursty => {
                    let mut t = rng.random_range(0.0..2e6);
                    while (t as u64) < end {
                        let size = rng.random_range(12..=45);
                        let spread = rng.random_range(20e3..400e3);
                        for _ in 0..size {
                            let at = (t + rng.random_range(0.0..spread)) as u64;
                            if at < end {
                                times.push((at, key));
                            }
                        }
                        t += spread + rng.random_range(0.2e6..2.5e6);
                    }
                }
                Class::Abusive => {
                    let rate = rng.random_range(40.0..150.0) / 1e6;
                    let mut t = 0.0;
                    loop {
                        let u: f64 = rng.random_range(f64::EPSILON..1.0);
                        t += -u.ln() / rate;
                        if t as u64 >= end {
                            break;
                        }
                        times.push((t as u64, key));
                    }
                }
            }
        }
        times.sort_unstable();
        let events = times
            .into_iter()
            .map(|(at_us, key)| Event {
                at_us,
                key,
                replayer: rng.random_range(0..replayers.max(1)) as u8,
            })
            .collect();
        Self { keys, events }
    }

    /// FNV-1a over every event, to tell two traces apart at a glance.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for e in &self.events {
            for b in e
                .at_us
                .to_le_bytes()
                .into_iter()
                .chain(e.key.to_le_bytes())
                .chain([e.replayer])
            {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    pub fn class_of(&self, key: u32) -> Class {
        self.keys[key as usize].1
    }
}

fn class_tag(class: Class) -> &'static str {
    match class {
        Class::Steady => "steady",
        Class::Bursty => "bursty",
        Class::Abusive => "abusive",
    }
}
