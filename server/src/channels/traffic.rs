//! Channel traffic as the dashboard sees it: every message on every channel
//! under the prefix, counted per channel, per minute and per sending
//! instance, with the last few kept for display.
//!
//! Memory is bounded whatever the traffic: a fixed number of channels, 60
//! minute buckets, 10 s of per-second timestamps and 20 messages each.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

/// Channels tracked at most; later ones are counted as dropped.
pub const MAX_CHANNELS: usize = 200;
/// Messages kept per channel for the "last messages" list.
pub const LAST_MESSAGES: usize = 20;
/// Characters of a payload shown.
pub const PREVIEW_CHARS: usize = 300;
/// Window of the messages/s figure.
pub const RATE_WINDOW_MS: i64 = 10_000;

const MINUTE_MS: i64 = 60_000;

/// One message seen on a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenMessage {
    /// When the dashboard saw it (ms since the epoch).
    pub at: i64,
    /// The sending instance, when the message is a coord envelope.
    pub instance: Option<String>,
    /// The envelope's change type (`created`, `updated`, …), if any.
    pub change_type: Option<String>,
    /// The raw payload, truncated to [`PREVIEW_CHARS`].
    pub preview: String,
    /// True when the message was not a valid envelope.
    pub malformed: bool,
}

/// One channel's traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelStats {
    /// The channel's name under the bus prefix (any text from foreign
    /// services).
    pub name: String,
    /// Messages per second over the last [`RATE_WINDOW_MS`].
    pub per_second: f64,
    /// Messages seen since the dashboard started.
    pub total: u64,
    /// Messages that were not valid envelopes.
    pub malformed: u64,
    /// Current subscribers, where the bus can tell (Redis).
    pub subscribers: Option<u64>,
    /// Messages by sending instance, most first.
    pub by_instance: Vec<(String, u64)>,
    /// Messages per minute over the last hour, oldest first.
    pub per_minute: Vec<(i64, u64)>,
    /// The newest messages, newest first.
    pub last_messages: Vec<SeenMessage>,
}
const MINUTES: i64 = 60;

#[derive(Debug, Default)]
struct Series {
    total: u64,
    malformed: u64,
    by_instance: HashMap<String, u64>,
    minutes: VecDeque<(i64, u64)>,
    recent: VecDeque<i64>,
    last: VecDeque<SeenMessage>,
}

/// Traffic of every channel seen.
#[derive(Debug, Default)]
pub struct Traffic {
    channels: HashMap<String, Series>,
    /// Messages on channels beyond [`MAX_CHANNELS`].
    pub dropped: u64,
}

impl Traffic {
    /// Counts one message seen at `at` (ms).
    pub fn record(&mut self, channel: &str, payload: &str, at: i64) {
        if !self.channels.contains_key(channel) && self.channels.len() >= MAX_CHANNELS {
            self.dropped += 1;
            return;
        }
        let series = self.channels.entry(channel.to_string()).or_default();
        series.total += 1;
        let (instance, change_type) = envelope_fields(payload);
        let malformed = instance.is_none();
        if malformed {
            series.malformed += 1;
        }
        if let Some(id) = &instance {
            *series.by_instance.entry(id.clone()).or_default() += 1;
        }
        let minute = at.div_euclid(MINUTE_MS) * MINUTE_MS;
        match series.minutes.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => series.minutes.push_back((minute, 1)),
        }
        while series
            .minutes
            .front()
            .is_some_and(|(m, _)| *m <= minute - MINUTES * MINUTE_MS)
        {
            series.minutes.pop_front();
        }
        series.recent.push_back(at);
        while series
            .recent
            .front()
            .is_some_and(|t| *t < at - RATE_WINDOW_MS)
        {
            series.recent.pop_front();
        }
        series.last.push_front(SeenMessage {
            at,
            instance,
            change_type,
            preview: preview(payload),
            malformed,
        });
        series.last.truncate(LAST_MESSAGES);
    }

    /// The channels' figures at `now` (subscriber counts left empty), by name.
    pub fn rows(&self, now: i64) -> Vec<ChannelStats> {
        let current = now.div_euclid(MINUTE_MS) * MINUTE_MS;
        let mut rows: Vec<ChannelStats> = self
            .channels
            .iter()
            .map(|(name, s)| {
                let recent = s.recent.iter().filter(|t| **t >= now - RATE_WINDOW_MS);
                let per_second = recent.count() as f64 * 1000.0 / RATE_WINDOW_MS as f64;
                let mut by_instance: Vec<(String, u64)> =
                    s.by_instance.iter().map(|(k, v)| (k.clone(), *v)).collect();
                by_instance.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let per_minute = (0..MINUTES)
                    .map(|i| {
                        let minute = current - (MINUTES - 1 - i) * MINUTE_MS;
                        let n = s
                            .minutes
                            .iter()
                            .find(|(m, _)| *m == minute)
                            .map_or(0, |(_, n)| *n);
                        (minute, n)
                    })
                    .collect();
                ChannelStats {
                    name: name.clone(),
                    per_second,
                    total: s.total,
                    malformed: s.malformed,
                    subscribers: None,
                    by_instance,
                    per_minute,
                    last_messages: s.last.iter().cloned().collect(),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }
}

/// The sender and change type of a coord envelope; `(None, None)` for
/// anything else.
fn envelope_fields(payload: &str) -> (Option<String>, Option<String>) {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(payload) else {
        return (None, None);
    };
    let instance = map
        .get("instanceId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let change = map
        .get("changeType")
        .and_then(Value::as_str)
        .map(str::to_string);
    match (instance, change) {
        (Some(i), Some(c)) if map.contains_key("payload") => (Some(i), Some(c)),
        _ => (None, None),
    }
}

fn preview(payload: &str) -> String {
    match payload.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &payload[..cut]),
        None => payload.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: &str = r#"{"instanceId":"api-1","timestamp":1,"changeType":"updated","keys":[],"source":"api","payload":{"version":3}}"#;

    #[test]
    fn envelopes_are_attributed_and_others_are_malformed() {
        let mut t = Traffic::default();
        t.record("state", ENVELOPE, 1_000);
        t.record("state", ENVELOPE, 2_000);
        t.record("state", "<script>not json</script>", 3_000);
        let rows = t.rows(3_000);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.total, row.malformed), (3, 1));
        assert_eq!(row.by_instance, vec![("api-1".to_string(), 2)]);
        assert_eq!(row.last_messages.len(), 3);
        assert!(row.last_messages[0].malformed);
        assert_eq!(row.last_messages[1].change_type.as_deref(), Some("updated"));
        assert!((row.per_second - 0.3).abs() < 1e-9, "{}", row.per_second);
        assert_eq!(row.per_minute.len(), 60);
        assert_eq!(row.per_minute[59].1, 3);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut t = Traffic::default();
        for i in 0..(MAX_CHANNELS + 5) {
            t.record(&format!("c{i}"), "x", 0);
        }
        assert_eq!(t.dropped, 5);
        for i in 0..100 {
            t.record("c0", &"y".repeat(1000), i);
        }
        let rows = t.rows(100);
        let c0 = rows.iter().find(|r| r.name == "c0").expect("c0");
        assert_eq!(c0.last_messages.len(), LAST_MESSAGES);
        assert!(c0.last_messages[0].preview.chars().count() <= PREVIEW_CHARS + 1);
    }

    #[test]
    fn old_minutes_and_rates_age_out() {
        let mut t = Traffic::default();
        t.record("c", "x", 0);
        let rows = t.rows(2 * 3_600_000);
        assert_eq!(rows[0].per_second, 0.0);
        assert!(rows[0].per_minute.iter().all(|(_, n)| *n == 0));
        assert_eq!(rows[0].total, 1);
    }
}
