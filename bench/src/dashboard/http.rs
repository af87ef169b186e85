//! Just enough HTTP/1.1 for the benchmark, over plain tokio sockets: a GET
//! that reads the whole response, and a server-sent-events reader that
//! counts `swap` events. Written here rather than pulling an HTTP client
//! into the workspace; the server is the thing under test, and a client
//! this small adds almost nothing of its own to the timings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Longest a page request may take before the benchmark gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The session every request sends (`switchyard_session=…`), once signed
/// in: the pages and streams are for signed-in users only.
static SESSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The `Cookie` header line for the session, if signed in.
fn cookie_line() -> String {
    SESSION
        .get()
        .map(|cookie| format!("Cookie: {cookie}\r\n"))
        .unwrap_or_default()
}

/// Signs in as `user` (`POST /login`) and keeps the session for every
/// later request of this process.
pub async fn sign_in(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<()> {
    let form = format!(
        "username={user}&password={}&next=%2F",
        password.replace(' ', "+")
    );
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(REQUEST_TIMEOUT, stream.read_to_end(&mut response))
        .await
        .context("no answer to the sign-in")??;
    let text = String::from_utf8_lossy(&response);
    let cookie = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.trim().split(';').next())
        .find(|pair| pair.starts_with("switchyard_session="))
        .with_context(|| format!("the sign-in set no session: {:?}", status_line(&response)))?;
    let _ = SESSION.set(cookie.to_owned());
    Ok(())
}

/// One page fetched: what the timing covered.
#[derive(Debug, Clone, Copy)]
pub struct Fetched {
    /// Connect, request, and the last byte of the response.
    pub took: Duration,
    /// Bytes received, headers included.
    pub bytes: usize,
}

/// `GET path` on a fresh connection (`Connection: close`, so the response
/// ends at EOF). Fails unless the status is 200. `body` receives the whole
/// response, for a caller that wants to check what the page showed.
pub async fn get(addr: SocketAddr, path: &str, body: &mut Vec<u8>) -> anyhow::Result<Fetched> {
    body.clear();
    let started = Instant::now();
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}\r\n",
            cookie_line()
        );
        stream.write_all(request.as_bytes()).await?;
        stream.read_to_end(body).await?;
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fetch)
        .await
        .with_context(|| format!("GET {path}: no complete answer within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("GET {path}"))?;
    let took = started.elapsed();
    let status = status_line(body);
    ensure!(
        status.starts_with("HTTP/1.1 200"),
        "GET {path} answered {status:?}"
    );
    Ok(Fetched {
        took,
        bytes: body.len(),
    })
}

/// Polls the JSON API at `path` every 500 ms until its `total` is
/// `total`; fails after `within`, naming `what` was awaited.
pub async fn wait_for_total(
    addr: SocketAddr,
    path: &str,
    total: usize,
    within: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let mut body = Vec::new();
    let ready_by = Instant::now() + within;
    loop {
        get(addr, path, &mut body).await?;
        // The raw answer: the JSON is after the head (a JSON answer has a
        // length, not chunks).
        let json = body
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(&body[..], |at| &body[at + 4..]);
        let seen: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        if seen["total"] == total {
            return Ok(());
        }
        ensure!(
            Instant::now() < ready_by,
            "{path} did not count {what} within {within:?} (last answer: {})",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn status_line(response: &[u8]) -> String {
    let end = response
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(response.len().min(80));
    String::from_utf8_lossy(&response[..end]).into_owned()
}

/// What one event-stream client saw.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// From starting to connect until the first `swap` event arrived.
    pub first_swap: Option<Duration>,
    /// Every `swap` event received.
    pub swaps: u64,
    /// `swap` events received while the activity window was open.
    pub swaps_in_window: u64,
    /// Body bytes received (after de-chunking).
    pub bytes: u64,
    /// Of those, the bytes received before the activity window opened
    /// (the first full page of regions).
    pub bytes_before_window: u64,
    /// Why the stream ended before it was told to stop, if it did.
    pub error: Option<String>,
}

/// What every event-stream client of a run shares with the benchmark.
#[derive(Debug, Default)]
pub struct StreamControl {
    /// True while the timed activity window is open, so the events of the
    /// window are counted apart from the initial full snapshot.
    pub window: AtomicBool,
    /// Clients that have received their first `swap` event: all connected
    /// and served once when this reaches the number of clients.
    pub ready: AtomicUsize,
}

/// Opens `GET path` as an event stream and reads it until `stop` turns
/// true, counting `event: swap` lines.
pub async fn event_stream(
    addr: SocketAddr,
    path: String,
    control: Arc<StreamControl>,
    mut stop: watch::Receiver<bool>,
) -> StreamStats {
    let started = Instant::now();
    let mut stats = StreamStats::default();
    let outcome = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n{}\r\n",
            cookie_line()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = vec![0u8; 8 * 1024];
        let mut head: Vec<u8> = Vec::new();
        let mut leftover: Vec<u8> = Vec::new();
        let mut body = Body::Unknown;
        let mut lines = LineCounter::default();
        loop {
            let n = tokio::select! {
                read = stream.read(&mut buf) => read?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            if n == 0 {
                bail!("the server closed the stream");
            }
            let mut input = &buf[..n];
            if let Body::Unknown = body {
                head.extend_from_slice(input);
                let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    ensure!(head.len() < 16 * 1024, "response headers too long");
                    continue;
                };
                let headers = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                ensure!(
                    headers.starts_with("http/1.1 200"),
                    "answered {:?}",
                    status_line(&head)
                );
                ensure!(
                    headers.contains("content-type: text/event-stream"),
                    "not an event stream: {headers:?}"
                );
                body = if headers.contains("transfer-encoding: chunked") {
                    Body::Chunked(Dechunk::default())
                } else {
                    Body::Plain
                };
                // What followed the headers in this read is body already.
                leftover = head.split_off(end + 4);
                head = Vec::new();
                input = &[];
            }
            let pending = std::mem::take(&mut leftover);
            let mut feed = |data: &[u8]| {
                stats.bytes += data.len() as u64;
                if !control.window.load(Ordering::Relaxed) {
                    stats.bytes_before_window += data.len() as u64;
                }
                let swaps = lines.feed(data);
                if swaps > 0 {
                    if stats.first_swap.is_none() {
                        stats.first_swap = Some(started.elapsed());
                        control.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.swaps += swaps;
                    if control.window.load(Ordering::Relaxed) {
                        stats.swaps_in_window += swaps;
                    }
                }
            };
            for chunk in [pending.as_slice(), input] {
                match &mut body {
                    Body::Chunked(d) => {
                        if d.feed(chunk, &mut feed)? {
                            bail!("the server ended the stream");
                        }
                    }
                    Body::Plain => feed(chunk),
                    Body::Unknown => {}
                }
            }
        }
    }
    .await;
    if let Err(e) = outcome {
        stats.error = Some(format!("{e:#}"));
    }
    stats
}

enum Body {
    Unknown,
    Plain,
    Chunked(Dechunk),
}

/// Counts lines that read exactly `event: swap`, fed in arbitrary pieces.
/// Keeps only the first few bytes of each line, so long `data:` lines of
/// HTML cost nothing to hold.
#[derive(Default)]
struct LineCounter {
    start: Vec<u8>,
    long: bool,
}

impl LineCounter {
    const WANTED: &'static [u8] = b"event: swap";

    fn feed(&mut self, data: &[u8]) -> u64 {
        let mut found = 0;
        for &b in data {
            match b {
                b'\n' => {
                    if !self.long
                        && self.start.strip_suffix(b"\r").unwrap_or(&self.start) == Self::WANTED
                    {
                        found += 1;
                    }
                    self.start.clear();
                    self.long = false;
                }
                _ if self.start.len() <= Self::WANTED.len() => self.start.push(b),
                _ => self.long = true,
            }
        }
        found
    }
}

/// Decodes `Transfer-Encoding: chunked` incrementally.
#[derive(Default)]
struct Dechunk {
    state: ChunkState,
}

enum ChunkState {
    /// Reading a size line: the size so far, and whether an extension began.
    Size(u64, bool),
    /// Inside a chunk's data: bytes still to come.
    Data(u64),
    /// The CRLF after a chunk's data: bytes still to skip.
    DataEnd(u8),
}

impl Default for ChunkState {
    fn default() -> Self {
        ChunkState::Size(0, false)
    }
}

impl Dechunk {
    /// Passes the payload bytes in `input` to `out`; true once the final
    /// (empty) chunk has been read.
    fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        while !input.is_empty() {
            match &mut self.state {
                ChunkState::Size(size, ext) => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'\n' if *size == 0 => return Ok(true),
                        b'\n' => self.state = ChunkState::Data(*size),
                        b'\r' => {}
                        b';' => *ext = true,
                        _ if *ext => {}
                        _ => {
                            let digit = (b as char)
                                .to_digit(16)
                                .with_context(|| format!("bad chunk size byte {b:#04x}"))?;
                            *size = size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(u64::from(digit)))
                                .context("chunk size overflows")?;
                        }
                    }
                }
                ChunkState::Data(left) => {
                    let take = (*left).min(input.len() as u64) as usize;
                    out(&input[..take]);
                    input = &input[take..];
                    *left -= take as u64;
                    if *left == 0 {
                        self.state = ChunkState::DataEnd(2);
                    }
                }
                ChunkState::DataEnd(left) => {
                    input = &input[1..];
                    *left -= 1;
                    if *left == 0 {
                        self.state = ChunkState::default();
                    }
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_swaps_across_pieces_and_chunks() {
        let payload = b": switchyard\nretry: 2000\n\nevent: swap\ndata: <div id=\"x\">\ndata: </div>\n\nevent: swap\r\ndata: event: swap\n\n";
        // Chunk it in 7-byte chunks, then feed the wire bytes 3 at a time.
        let mut wire = Vec::new();
        for chunk in payload.chunks(7) {
            wire.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let mut d = Dechunk::default();
        let mut lines = LineCounter::default();
        let mut decoded = Vec::new();
        let mut swaps = 0;
        let mut ended = false;
        for piece in wire.chunks(3) {
            ended = d
                .feed(piece, &mut |data: &[u8]| {
                    decoded.extend_from_slice(data);
                    swaps += lines.feed(data);
                })
                .expect("valid chunking");
            if ended {
                break;
            }
        }
        assert!(ended);
        assert_eq!(decoded, payload);
        assert_eq!(swaps, 2);
    }

    #[test]
    fn status_line_stops_at_cr() {
        assert_eq!(
            status_line(b"HTTP/1.1 404 Not Found\r\n"),
            "HTTP/1.1 404 Not Found"
        );
    }
}
