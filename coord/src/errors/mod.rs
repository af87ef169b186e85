//! Error groups: failed jobs grouped by what went wrong rather than by the
//! exact text, so `card declined for order 8812` and `card declined for
//! order 9120` are one problem to look at (and retry, or remove) once.
//!
//! This module holds what every backend shares: the normalised form of a
//! reason ([`normalise`]) and the stable id derived from it ([`GroupId`]).
//! Both are pure and versioned by their tests: a group id is stored and
//! put in URLs, so changing the folding rules regroups every failure.

use std::fmt;

use serde::Serialize;

/// Longest normalised reason kept, in bytes; the rest is cut at a
/// character boundary and marked with `…`. Long reasons (stack dumps,
/// payload echoes) would otherwise make every failure a group of its own.
pub const MAX_NORMALISED: usize = 256;

/// The form of `reason` that failures of one cause share.
///
/// Folded to `#`:
/// - numbers of four digits or more, with their sign, decimals and
///   separators (`8812`, `-12.50`, `1,024,000`), and anything made of
///   digits and date/time punctuation (`2026-12-05T01:02:03.5Z`,
///   `10.0.0.1`, `12:30`);
/// - hex runs and UUIDs with at least one digit (`0x7f3a`, `deadbeef42`,
///   `550e8400-e29b-41d4-a716-446655440000`);
/// - the digits inside a word (`ord_8812` → `ord_#`, `user42` → `user#`).
///
/// Quoted values (`'…'`, `"…"`, `` `…` ``) become `'?'` (with their own
/// quote); a quote right after a letter or digit is an apostrophe. Integers of one to three digits standing alone are kept: they
/// are usually codes (`SMTP 421` and `SMTP 550` are different problems,
/// as are HTTP 429 and 503), at the price of splitting `retry in 5 s`
/// from `retry in 12 s`. Whitespace runs become one space.
pub fn normalise(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len().min(MAX_NORMALISED + 4));
    let mut i = 0;
    while i < chars.len() && out.len() < MAX_NORMALISED {
        let c = chars[i];
        if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if !out.is_empty() && i < chars.len() {
                out.push(' ');
            }
            continue;
        }
        // A quote opens a value only after a non-word character, so the
        // apostrophes of `it's Bob's` are text.
        let opens = i == 0 || !chars[i - 1].is_alphanumeric();
        if opens
            && matches!(c, '\'' | '"' | '`')
            && let Some(len) = chars[i + 1..].iter().position(|&q| q == c)
        {
            out.push(c);
            out.push('?');
            out.push(c);
            i += len + 2;
            continue;
        }
        if is_token_char(c) {
            let start = i;
            while i < chars.len() && is_token_char(chars[i]) {
                i += 1;
            }
            fold_token(&chars[start..i], &mut out);
            continue;
        }
        out.push(c);
        i += 1;
    }
    if out.len() >= MAX_NORMALISED {
        let mut cut = MAX_NORMALISED.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Characters of one token: what numbers, ids, hex, dates and times are
/// written with.
fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '+' | ',')
}

/// Appends `token` (a run of [`is_token_char`]) folded as [`normalise`]
/// says. Trailing punctuation (`8812.` at the end of a sentence, `a,`) is
/// kept apart, so it is not taken for part of a number.
fn fold_token(token: &[char], out: &mut String) {
    let end = token
        .iter()
        .rposition(|c| c.is_alphanumeric())
        .map_or(0, |last| last + 1);
    let (body, trail) = token.split_at(end);
    let digits = body.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        out.extend(body);
    } else if is_numeric(body) {
        let short_integer = digits == body.len() && digits <= 3;
        if short_integer {
            out.extend(body);
        } else {
            out.push('#');
        }
    } else if is_hex(body) {
        out.push('#');
    } else {
        let mut in_digits = false;
        for &c in body {
            if c.is_ascii_digit() {
                if !in_digits {
                    out.push('#');
                }
                in_digits = true;
            } else {
                in_digits = false;
                out.push(c);
            }
        }
    }
    out.extend(trail);
}

/// Digits with sign, decimal, thousands and date/time punctuation only.
fn is_numeric(body: &[char]) -> bool {
    body.iter()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | ':' | 'T' | 'Z'))
}

/// A hex run (`0x` optional) or a UUID: hex digits and dashes, at least
/// six hex digits, one of them a decimal digit (so `deadbeef` or `cafe`,
/// which are words too, stay as they are).
fn is_hex(body: &[char]) -> bool {
    let body = match body {
        ['0', 'x' | 'X', rest @ ..] => rest,
        _ => body,
    };
    let hex = body.iter().filter(|c| c.is_ascii_hexdigit()).count();
    hex >= 6
        && body.iter().all(|c| c.is_ascii_hexdigit() || *c == '-')
        && body.iter().any(|c| c.is_ascii_digit())
}

/// A group's stable id: 64-bit FNV-1a of the normalised reason, as 16 hex
/// digits. FNV rather than std's hasher, whose output may change between
/// Rust releases: the id is stored and put in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(u64);

impl GroupId {
    /// The id of the group `reason` falls in.
    pub fn of_reason(reason: &str) -> Self {
        Self::of_normalised(&normalise(reason))
    }

    /// The id of an already normalised reason.
    pub fn of_normalised(normalised: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in normalised.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(hash)
    }

    /// Parses the 16 hex digits [`fmt::Display`] writes.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(Self)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for GroupId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Longest failure reason a group keeps as its sample, in bytes: enough
/// to read, and bounded whatever a worker throws.
pub const MAX_SAMPLE: usize = 1024;

/// Most groups one queue's list answers (the most recently failed): a
/// reason that escapes folding could otherwise make every failure a group
/// and the list as long as the failed set.
pub const MAX_GROUPS: usize = 1000;

/// Most job names a group lists (the most affected first).
pub const MAX_NAMES: usize = 10;

/// A group's trend: its failed jobs by when they failed, in
/// [`TREND_BUCKETS`] buckets of [`TREND_BUCKET_MS`] ending now, oldest
/// first. It counts the group's current members, so a retried job leaves
/// the trend with the group.
pub type Trend = [u32; TREND_BUCKETS];

/// Buckets of a [`Trend`]: an hour of five minutes.
pub const TREND_BUCKETS: usize = 12;

/// Width of one [`Trend`] bucket.
pub const TREND_BUCKET_MS: i64 = 5 * 60_000;

/// One error group of a queue: its failed jobs whose reasons normalise
/// alike. Kept up to date by the backend as jobs fail and leave the
/// failed set, so reading it never scans jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    pub id: GroupId,
    /// Jobs of the group now in the failed state.
    pub failed: u64,
    /// When the group's first failure happened since it was last empty, ms
    /// since the epoch (not moved when its oldest jobs leave; a group
    /// emptied by a retry or removal and failing again starts afresh).
    pub first_seen: i64,
    /// The latest failure into the group.
    pub last_seen: i64,
    /// The group's newest failed job's id (a native [`crate::queue::JobId`], or a
    /// BullMQ id, which may hold any character).
    pub sample_job: String,
    /// That job's reason, cut to [`MAX_SAMPLE`] bytes (backends store at
    /// most that many characters and cut it on reading).
    pub sample_reason: String,
    /// Job names with their failed jobs in the group, the most first, at
    /// most [`MAX_NAMES`].
    pub names: Vec<(String, u64)>,
    /// How many names there are in all.
    pub names_total: u64,
}

impl ErrorGroup {
    /// The reason as the group shares it.
    pub fn normalised(&self) -> String {
        normalise(&self.sample_reason)
    }

    /// Orders the names most affected first and keeps [`MAX_NAMES`];
    /// what backends call on what they read.
    pub fn keep_top_names(&mut self) {
        self.names_total = self.names.len() as u64;
        self.names
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.names.truncate(MAX_NAMES);
    }
}

/// A queue's error groups, the most recently failed first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroups {
    /// At most the limit asked for.
    pub groups: Vec<ErrorGroup>,
    /// How many groups the queue has.
    pub total: u64,
}

/// What a group-wide action does to each of the group's failed jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// Back to waiting with a fresh attempt budget, as a retry does.
    Retry,
    /// Deleted.
    Remove,
}

impl GroupAction {
    /// Name used in the API, audit records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAction::Retry => "retry",
            GroupAction::Remove => "remove",
        }
    }
}

/// Cuts a failure reason to [`MAX_SAMPLE`] bytes at a character boundary.
pub fn sample(reason: &str) -> &str {
    let mut cut = MAX_SAMPLE.min(reason.len());
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    &reason[..cut]
}

/// The bucket of a [`Trend`] ending at `now` that a failure at `at` falls
/// in, if any.
pub fn trend_bucket(now: i64, at: i64) -> Option<usize> {
    let start = now - TREND_BUCKET_MS * TREND_BUCKETS as i64;
    if at <= start || at > now {
        return None;
    }
    let from_start = (at - start - 1) / TREND_BUCKET_MS;
    usize::try_from(from_start)
        .ok()
        .filter(|&b| b < TREND_BUCKETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_amounts_and_times_fold_and_codes_stay() {
        let cases = [
            ("card declined for order 8812", "card declined for order #"),
            (
                "card declined for order 9120.",
                "card declined for order #.",
            ),
            ("SMTP 421 try again later", "SMTP 421 try again later"),
            (
                "SMTP 550 mailbox unavailable",
                "SMTP 550 mailbox unavailable",
            ),
            ("charge of -12.50 EUR refused", "charge of # EUR refused"),
            ("quota 1,024,000 bytes exceeded", "quota # bytes exceeded"),
            ("at 2026-12-05T01:02:03.5Z", "at #"),
            ("connect 10.0.0.17:6379 refused", "connect # refused"),
            ("object 0x7f3a9c missing", "object # missing"),
            (
                "trace 550e8400-e29b-41d4-a716-446655440000 failed",
                "trace # failed",
            ),
            ("user42 not found in ord_8812", "user# not found in ord_#"),
            (
                "no route to 'api.example.com' (\"GET /x\")",
                "no route to '?' (\"?\")",
            ),
            ("cafe deadbeef closed", "cafe deadbeef closed"),
            ("  spaced \t out\n", "spaced out"),
            ("it's broken", "it's broken"),
            ("it's Bob's job 12345", "it's Bob's job #"),
        ];
        for (reason, expected) in cases {
            assert_eq!(normalise(reason), expected, "{reason:?}");
            // A group's reason normalises to itself: a stored form read
            // back lands in the same group.
            assert_eq!(normalise(expected), expected, "{expected:?}");
        }
    }

    #[test]
    fn failures_of_one_cause_share_a_group_and_others_do_not() {
        let a = GroupId::of_reason("card declined for order 8812");
        assert_eq!(a, GroupId::of_reason("card declined for order 9120"));
        assert_ne!(a, GroupId::of_reason("card expired for order 8812"));
        assert_ne!(
            GroupId::of_reason("SMTP 421 try again later"),
            GroupId::of_reason("SMTP 550 try again later")
        );
    }

    #[test]
    fn group_ids_are_stable_and_round_trip() {
        // Stored and put in URLs: a change here regroups every failure.
        assert_eq!(GroupId::of_normalised("").to_string(), "cbf29ce484222325");
        assert_eq!(GroupId::of_normalised("a").to_string(), "af63dc4c8601ec8c");
        let id = GroupId::of_reason("timeout after 30000 ms");
        assert_eq!(GroupId::parse(&id.to_string()), Some(id));
        assert_eq!(GroupId::parse("xyz"), None);
        assert_eq!(GroupId::parse("cbf29ce48422232g"), None);
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(400);
        let n = normalise(&long);
        assert!(n.ends_with('…'));
        assert!(n.len() <= MAX_NORMALISED + '…'.len_utf8());
        // Two reasons that differ only past the cut are one group.
        assert_eq!(
            GroupId::of_reason(&format!("{long} a")),
            GroupId::of_reason(&format!("{long} b"))
        );
    }
}
