//! The test HTTP client against a real socket: a canned HTTP/1.1 answer
//! (the server's own tests exercise it against the real server).

use std::net::SocketAddr;
use std::time::Duration;

use test_support::http::{SseNext, form_encode, open_sse, request, url_encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Listens on a free port and answers one connection with `response`,
/// handing back the request it read.
async fn answer_once(response: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let n = socket.read(&mut buf).await.expect("read");
        socket.write_all(response.as_bytes()).await.expect("write");
        socket.shutdown().await.expect("shutdown");
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    (addr, served)
}

#[tokio::test]
async fn a_chunked_response_is_decoded_with_its_headers() {
    let (addr, served) = answer_once(
        "HTTP/1.1 303 See Other\r\nLocation: /queues\r\nSet-Cookie: a=1; Path=/\r\n\
         Set-Cookie: b=2\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         4\r\n{\"er\r\n10\r\nror\": \"no such q\r\n3\r\n\"}\n\r\n0\r\n\r\n",
    )
    .await;
    let response = request(addr, "POST", "/x", &[("X-Test", "yes")], b"body").await;
    let sent = served.await.expect("served");
    assert!(sent.starts_with("POST /x HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains("X-Test: yes\r\n"), "{sent}");
    assert!(sent.contains("Content-Length: 4\r\n"), "{sent}");
    assert_eq!(response.status, 303);
    assert_eq!(response.header("LOCATION"), Some("/queues"));
    assert_eq!(response.header_all("set-cookie").len(), 2);
    assert_eq!(response.set_cookie("b"), Some("b=2"));
    assert!(response.is_json());
    assert_eq!(response.error(), "no such q");
}

#[tokio::test]
async fn an_event_stream_is_read_one_event_at_a_time() {
    let (addr, served) = answer_once(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n\
         : hello\n\nevent: swap\ndata: <div id=\"jobs\">\ndata: 1</div>\nretry: 500\n\n",
    )
    .await;
    let mut stream = open_sse(addr, "/live", &[]).await;
    assert_eq!(stream.status, 200);
    let wait = Duration::from_secs(5);
    let hello = stream.expect_event(wait).await;
    assert_eq!(hello.comments, ["hello"]);
    let swap = stream.expect_event(wait).await;
    assert!(swap.is_swap());
    assert_eq!(swap.region(), Some("jobs"));
    assert_eq!(swap.data, "<div id=\"jobs\">\n1</div>");
    assert_eq!(swap.retry, Some(500));
    assert!(matches!(stream.next(wait).await, SseNext::End));
    assert!(
        served
            .await
            .expect("served")
            .contains("Accept: text/event-stream")
    );
}

#[test]
fn forms_are_percent_encoded_in_order() {
    assert_eq!(url_encode("a b/é~"), "a%20b%2F%C3%A9~");
    assert_eq!(
        form_encode(&[("q", "x&y"), ("q", "z"), ("next", "/")]),
        "q=x%26y&q=z&next=%2F"
    );
}
