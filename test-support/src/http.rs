//! A deliberately tiny HTTP/1.1 client for the tests: one request per
//! connection (`Connection: close`), read to the end, chunked bodies
//! decoded. It keeps the test build free of a full HTTP client stack while
//! still exercising the server over a real socket.
//!
//! It never follows redirects (a 303 is returned as is, with its
//! `Location`), and it can read a server-sent event stream incrementally
//! ([`SseStream`]), one event at a time with a timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A received response.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl TestResponse {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// Every value of a header (e.g. several `Set-Cookie`s).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `Set-Cookie` header setting cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.header_all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&prefix))
    }

    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// The `error` field of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field in {}", self.body))
            .to_string()
    }

    /// Whether the body is an HTML page.
    pub fn is_html(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/html"))
    }

    /// Whether the body is JSON.
    pub fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    }
}

/// Sends one request and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TestResponse {
    let exchange = async {
        let mut stream = write_request(addr, method, path, headers, body).await;
        // The server may answer (e.g. 413) and close before reading a large
        // body; a failed write is then expected, the response still readable.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        parse(&raw)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} took longer than {REQUEST_TIMEOUT:?}"))
}

/// `application/x-www-form-urlencoded` text of `fields`, in order (a name
/// may repeat, as with several ticked checkboxes).
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters; spaces as `%20`
/// (valid in both a query string and a form body).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn write_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
}

/// Status and lower-cased headers of a response head (without the blank
/// line).
fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = String::from_utf8_lossy(head).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// The first value of header `name` (matched case-insensitively) among
/// lower-cased `headers`.
fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    first_header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
}

fn parse(raw: &[u8]) -> TestResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let (status, headers) = parse_head(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    if is_chunked(&headers) {
        body = dechunk(&body);
    }
    TestResponse {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (`None` for a comment-only block).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `retry:` field, in milliseconds.
    pub retry: Option<u64>,
    /// Comment lines (`: text`), without the colon.
    pub comments: Vec<String>,
}

impl SseEvent {
    /// The `id` attribute of the data's outermost element: the region a
    /// `swap` event replaces.
    pub fn region(&self) -> Option<&str> {
        let rest = self.data.strip_prefix('<')?;
        let tag = &rest[..rest.find('>')?];
        let start = tag.find(" id=\"")? + 5;
        let len = tag[start..].find('"')?;
        Some(&tag[start..start + len])
    }

    /// Whether this is a region update.
    pub fn is_swap(&self) -> bool {
        self.event.as_deref() == Some("swap")
    }

    fn parse(block: &str) -> Self {
        let mut event = SseEvent::default();
        let mut data: Vec<&str> = Vec::new();
        for line in block.split('\n') {
            if let Some(comment) = line.strip_prefix(':') {
                event
                    .comments
                    .push(comment.strip_prefix(' ').unwrap_or(comment).to_string());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.event = Some(value.to_string()),
                "data" => data.push(value),
                "retry" => event.retry = value.parse().ok(),
                _ => {}
            }
        }
        event.data = data.join("\n");
        event
    }
}

/// What reading a stream gave.
#[derive(Debug)]
pub enum SseNext {
    /// An event arrived.
    Event(SseEvent),
    /// The server ended the stream (or closed the connection).
    End,
    /// Nothing complete arrived in time.
    Timeout,
}

/// An open server-sent event stream, read one event at a time.
pub struct SseStream {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    stream: TcpStream,
    /// Body bytes received and not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked body not yet parsed into events.
    text: Vec<u8>,
    chunked: bool,
    /// The last chunk (or the end of the connection) was seen.
    ended: bool,
    /// Events read so far.
    pub received: usize,
}

/// Opens `GET path` as an event stream, sending `headers` too (e.g. the
/// session's `Cookie`), and reads the response head.
pub async fn open_sse(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseStream {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        let mut stream = write_request(addr, "GET", path, &all, b"").await;
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let split = loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break split;
            }
            let n = stream.read(&mut buf).await.expect("read response head");
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let (status, headers) = parse_head(&raw[..split]);
        let chunked = is_chunked(&headers);
        SseStream {
            status,
            headers,
            stream,
            raw: raw[split + 4..].to_vec(),
            text: Vec::new(),
            chunked,
            ended: false,
            received: 0,
        }
    })
    .await
    .unwrap_or_else(|_| panic!("GET {path} sent no response head in {REQUEST_TIMEOUT:?}"))
}

impl SseStream {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// Reads the rest of a (non-stream, e.g. error) response.
    pub async fn into_response(mut self) -> TestResponse {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, self.stream.read_to_end(&mut rest)).await;
        let mut body = std::mem::take(&mut self.raw);
        body.extend_from_slice(&rest);
        if self.chunked {
            body = dechunk(&body);
        }
        TestResponse {
            status: self.status,
            headers: self.headers,
            body: String::from_utf8(body).expect("UTF-8 body"),
        }
    }

    /// The next event, or the end of the stream, or a timeout.
    pub async fn next(&mut self, timeout: Duration) -> SseNext {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            self.decode();
            if let Some(event) = self.take_event() {
                self.received += 1;
                return SseNext::Event(event);
            }
            if self.ended {
                return SseNext::End;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return SseNext::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.decode();
                    self.ended = true;
                }
                Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The next event; panics on the end of the stream or a timeout.
    pub async fn expect_event(&mut self, timeout: Duration) -> SseEvent {
        match self.next(timeout).await {
            SseNext::Event(event) => event,
            SseNext::End => panic!("the event stream ended"),
            SseNext::Timeout => panic!("no event within {timeout:?}"),
        }
    }

    /// Reads events until a `swap` for which `want` holds, within `timeout`
    /// in all; panics (with the regions seen) otherwise.
    pub async fn swap_until(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&SseEvent) -> bool,
    ) -> SseEvent {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                SseNext::Event(event) if event.is_swap() && want(&event) => return event,
                SseNext::Event(event) => seen.push(
                    event
                        .region()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{:?}", event.comments)),
                ),
                SseNext::End => panic!("the stream ended first; saw {seen:?}"),
                SseNext::Timeout => {
                    panic!("no matching swap within {timeout:?}; saw {seen:?}")
                }
            }
        }
    }

    /// Reads `swap` events until each of `regions` was received once, and
    /// returns their HTML by region id (later swaps of a region win).
    pub async fn regions(
        &mut self,
        regions: &[&str],
        timeout: Duration,
    ) -> std::collections::HashMap<String, String> {
        let mut got = std::collections::HashMap::new();
        let deadline = Instant::now() + timeout;
        while !regions.iter().all(|r| got.contains_key(*r)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                SseNext::Event(event) if event.is_swap() => {
                    let region = event.region().unwrap_or_default().to_string();
                    got.insert(region, event.data);
                }
                SseNext::Event(_) => {}
                SseNext::End => panic!(
                    "the stream ended before regions {regions:?}; got {:?}",
                    got.keys()
                ),
                SseNext::Timeout => panic!(
                    "regions {regions:?} not all received within {timeout:?}; got {:?}",
                    got.keys()
                ),
            }
        }
        got
    }

    /// Moves complete chunks from `raw` to `text`.
    fn decode(&mut self) {
        if !self.chunked {
            self.text.append(&mut self.raw);
            return;
        }
        loop {
            let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if size == 0 {
                self.ended = true;
                self.raw.clear();
                return;
            }
            let start = end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.text.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }

    /// Parses one complete event (a block ended by a blank line) off `text`.
    fn take_event(&mut self) -> Option<SseEvent> {
        let end = self.text.windows(2).position(|w| w == b"\n\n")?;
        let block = String::from_utf8(self.text[..end].to_vec()).expect("UTF-8 event");
        self.text.drain(..end + 2);
        Some(SseEvent::parse(&block))
    }
}
