//! `SLOWLOG GET` and `LATENCY LATEST` answers, typed. Slow-log arguments
//! are whatever clients sent (values, passwords of `AUTH` excepted — Redis
//! leaves those out itself — binary data): each is cut to
//! [`MAX_ARG_CHARS`] and the whole line to [`MAX_LINE_CHARS`], ending
//! with [`TRUNCATED`], and control characters and bytes that are not UTF-8
//! are written as `\xNN`, so the text is safe to print and small to ship.
//! (HTML escaping stays the page's job.)

use redis::Value;
use serde::Serialize;

/// Most characters kept of one argument.
pub const MAX_ARG_CHARS: usize = 64;
/// Most characters of the whole command line.
pub const MAX_LINE_CHARS: usize = 256;
/// Most arguments kept (Redis itself keeps 32).
pub const MAX_ARGS: usize = 32;
/// Ends a text that was cut.
pub const TRUNCATED: &str = "…";

/// One slow-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowlogEntry {
    /// Its id, growing from the node's start (or last `SLOWLOG RESET`).
    pub id: u64,
    /// Unix seconds when it ran.
    pub time_secs: i64,
    /// How long it ran, in microseconds (Redis's own time, not the
    /// round trip).
    pub duration_us: u64,
    /// The command name, upper case, cut and escaped.
    pub command: String,
    /// Its arguments after the name, each cut and escaped.
    pub args: Vec<String>,
    /// Name and arguments as one line (arguments holding spaces or
    /// quotes quoted), cut to [`MAX_LINE_CHARS`].
    pub line: String,
    /// True when anything was cut, here or by Redis (`... (N more
    /// bytes)`).
    pub truncated: bool,
    /// The client's `ip:port`, when Redis told it (4.0 and later).
    pub client_addr: Option<String>,
    /// The client's connection name, when it set one.
    pub client_name: Option<String>,
}

/// One event of `LATENCY LATEST`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyEntry {
    /// `command`, `fast-command`, `fork`, `expire-cycle`…
    pub event: String,
    /// Unix seconds of its latest spike.
    pub latest_secs: i64,
    /// That spike, in milliseconds.
    pub latest_ms: u64,
    /// The worst spike since the node started (or `LATENCY RESET`).
    pub max_ms: u64,
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => std::str::from_utf8(bytes(other)?).ok()?.trim().parse().ok(),
    }
}

fn items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// `bytes` as printable text of at most `max` characters: control
/// characters, backslashes and invalid UTF-8 escaped (`\xNN`, `\\`), cut
/// with [`TRUNCATED`]. Returns the text and whether it was cut.
pub fn printable(bytes: &[u8], max: usize) -> (String, bool) {
    let mut out = String::new();
    let mut chars = 0;
    let mut push = |piece: &str, out: &mut String| -> bool {
        let n = piece.chars().count();
        if chars + n > max {
            return false;
        }
        chars += n;
        out.push_str(piece);
        true
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let piece = if c == '\\' {
                "\\\\".to_owned()
            } else if c.is_control() {
                if (c as u32) < 0x100 {
                    format!("\\x{:02x}", c as u32)
                } else {
                    format!("\\u{{{:x}}}", c as u32)
                }
            } else {
                c.to_string()
            };
            if !push(&piece, &mut out) {
                return (cut(out, max), true);
            }
        }
        for b in chunk.invalid() {
            if !push(&format!("\\x{b:02x}"), &mut out) {
                return (cut(out, max), true);
            }
        }
    }
    (out, false)
}

/// `text` shortened so that it and [`TRUNCATED`] fit `max` characters.
fn cut(mut text: String, max: usize) -> String {
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    if let Some((at, _)) = text.char_indices().nth(keep) {
        text.truncate(at);
    }
    text.push_str(TRUNCATED);
    text
}

/// Quoted when it holds a space or a quote, or is empty, so a line reads
/// back into its arguments.
fn quoted(arg: &str) -> String {
    if arg.is_empty() || arg.contains([' ', '"', '\'']) {
        format!("\"{}\"", arg.replace('"', "\\\""))
    } else {
        arg.to_owned()
    }
}

/// Redis's own marks that it cut an argument or the argument list.
fn cut_by_redis(arg: &[u8]) -> bool {
    let text = String::from_utf8_lossy(arg);
    (text.contains("... (") && text.ends_with(" more bytes)"))
        || (text.starts_with("... (") && text.ends_with(" more arguments)"))
}

/// Parses a `SLOWLOG GET` answer; entries it cannot read are skipped.
pub fn parse_slowlog(value: &Value) -> Vec<SlowlogEntry> {
    items(value)
        .unwrap_or_default()
        .iter()
        .filter_map(parse_slowlog_entry)
        .collect()
}

fn parse_slowlog_entry(value: &Value) -> Option<SlowlogEntry> {
    let fields = items(value)?;
    let id = u64::try_from(integer(fields.first()?)?).ok()?;
    let time_secs = integer(fields.get(1)?)?;
    let duration_us = u64::try_from(integer(fields.get(2)?)?).unwrap_or(0);
    let raw: Vec<&[u8]> = items(fields.get(3)?)?.iter().filter_map(bytes).collect();
    let mut truncated = raw.len() > MAX_ARGS || raw.iter().any(|a| cut_by_redis(a));
    let mut words = Vec::with_capacity(raw.len().min(MAX_ARGS));
    for arg in raw.iter().take(MAX_ARGS) {
        let (text, cut_here) = printable(arg, MAX_ARG_CHARS);
        truncated |= cut_here;
        words.push(text);
    }
    let command = words.first().map(|c| c.to_uppercase()).unwrap_or_default();
    let args: Vec<String> = words.into_iter().skip(1).collect();
    let mut line = command.clone();
    for arg in &args {
        line.push(' ');
        line.push_str(&quoted(arg));
    }
    if raw.len() > MAX_ARGS {
        line.push(' ');
        line.push_str(TRUNCATED);
    }
    if line.chars().count() > MAX_LINE_CHARS {
        line = cut(line, MAX_LINE_CHARS);
        truncated = true;
    }
    let text = |i: usize| {
        fields
            .get(i)
            .and_then(bytes)
            .filter(|b| !b.is_empty())
            .map(|b| printable(b, MAX_ARG_CHARS).0)
    };
    Some(SlowlogEntry {
        id,
        time_secs,
        duration_us,
        command,
        args,
        line,
        truncated,
        client_addr: text(4),
        client_name: text(5),
    })
}

/// Parses a `LATENCY LATEST` answer; entries it cannot read are skipped.
pub fn parse_latency(value: &Value) -> Vec<LatencyEntry> {
    items(value)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let fields = items(entry)?;
            Some(LatencyEntry {
                event: printable(bytes(fields.first()?)?, MAX_ARG_CHARS).0,
                latest_secs: integer(fields.get(1)?)?,
                latest_ms: u64::try_from(integer(fields.get(2)?)?).ok()?,
                max_ms: u64::try_from(integer(fields.get(3)?)?).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    fn entry(id: i64, args: &[&[u8]], addr: &str, name: &str) -> Value {
        Value::Array(vec![
            Value::Int(id),
            Value::Int(1_796_548_039),
            Value::Int(51_234),
            Value::Array(args.iter().map(|a| bulk(a)).collect()),
            bulk(addr.as_bytes()),
            bulk(name.as_bytes()),
        ])
    }

    #[test]
    fn entries_are_read_with_their_client() {
        let value = Value::Array(vec![entry(
            7,
            &[b"debug", b"sleep", b"0.05"],
            "127.0.0.1:5000",
            "worker-1",
        )]);
        let entries = parse_slowlog(&value);
        assert_eq!(
            entries,
            vec![SlowlogEntry {
                id: 7,
                time_secs: 1_796_548_039,
                duration_us: 51_234,
                command: "DEBUG".into(),
                args: vec!["sleep".into(), "0.05".into()],
                line: "DEBUG sleep 0.05".into(),
                truncated: false,
                client_addr: Some("127.0.0.1:5000".into()),
                client_name: Some("worker-1".into()),
            }]
        );
    }

    #[test]
    fn arguments_and_lines_are_cut_and_escaped() {
        let long = vec![b'x'; 1000];
        let spaced: &[u8] = b"a b\"c";
        let binary: &[u8] = b"\x00\x1b[31m\xff\\";
        let value = Value::Array(vec![entry(1, &[b"set", &long, spaced, binary], "", "")]);
        let e = &parse_slowlog(&value)[0];
        assert!(e.truncated);
        assert_eq!(e.args[0].chars().count(), MAX_ARG_CHARS);
        assert!(e.args[0].ends_with(TRUNCATED));
        assert_eq!(e.args[1], "a b\"c");
        assert_eq!(e.args[2], "\\x00\\x1b[31m\\xff\\\\");
        assert!(e.line.contains(" \"a b\\\"c\" "), "{}", e.line);
        assert_eq!(
            (e.client_addr.as_deref(), e.client_name.as_deref()),
            (None, None)
        );

        let many: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("argument-{i:03}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let e = &parse_slowlog(&Value::Array(vec![entry(2, &refs, "", "")]))[0];
        assert!(e.truncated);
        assert_eq!(e.args.len(), MAX_ARGS - 1);
        assert_eq!(e.line.chars().count(), MAX_LINE_CHARS);
        assert!(e.line.ends_with(TRUNCATED));

        // Redis's own cut marks say so too.
        let e = &parse_slowlog(&Value::Array(vec![entry(
            3,
            &[b"set", b"k", b"aaaa... (872 more bytes)"],
            "",
            "",
        )]))[0];
        assert!(e.truncated);
    }

    #[test]
    fn unreadable_answers_give_nothing_rather_than_fail() {
        assert!(parse_slowlog(&Value::Nil).is_empty());
        assert!(parse_slowlog(&Value::Array(vec![Value::Int(1), Value::Nil])).is_empty());
        // Redis before 4.0: no client fields.
        let old = Value::Array(vec![Value::Array(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
            Value::Array(vec![bulk(b"get"), bulk(b"k")]),
        ])]);
        let e = &parse_slowlog(&old)[0];
        assert_eq!((e.line.as_str(), e.client_addr.as_deref()), ("GET k", None));
    }

    #[test]
    fn latency_latest_is_read() {
        let value = Value::Array(vec![
            Value::Array(vec![
                bulk(b"command"),
                Value::Int(1_796_548_039),
                Value::Int(51),
                Value::Int(203),
            ]),
            Value::Array(vec![bulk(b"broken")]),
        ]);
        assert_eq!(
            parse_latency(&value),
            vec![LatencyEntry {
                event: "command".into(),
                latest_secs: 1_796_548_039,
                latest_ms: 51,
                max_ms: 203,
            }]
        );
        assert!(parse_latency(&Value::Nil).is_empty());
    }

    #[test]
    fn printable_keeps_unicode_and_counts_characters() {
        assert_eq!(printable("héllo".as_bytes(), 10), ("héllo".into(), false));
        let (text, cut) = printable("ééééé".as_bytes(), 3);
        assert!(cut);
        assert_eq!(text, "éé…");
        // An escape is never split.
        let (text, cut) = printable(b"a\x01", 3);
        assert!(cut);
        assert_eq!(text, "a…");
    }
}
