//! The private redis-server: outage tests stop and start it, so it must
//! really go away on `stop` and on drop, and come back on its port.

use test_support::redis::{PrivateRedis, free_port};

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .is_ok()
}

#[tokio::test]
async fn a_private_redis_stops_and_starts_again_on_its_port() {
    let mut server = PrivateRedis::started().await;
    let url = server.url();
    assert_eq!(url, format!("redis://127.0.0.1:{}", server.port()));
    assert!(answers(&url).await, "answers once started");

    server.stop();
    assert!(!answers(&url).await, "gone after stop");

    let again = PrivateRedis::start(server.port());
    again.ready().await;
    assert!(answers(&url).await, "answers on the same port again");
}

#[tokio::test]
async fn dropping_a_private_redis_ends_its_process() {
    let url = PrivateRedis::started().await.url();
    assert!(!answers(&url).await, "{url} still answers after the drop");
}

#[tokio::test]
async fn a_private_redis_takes_options_and_its_own_url() {
    let port = free_port();
    let url = format!("redis://:pw-for-test@127.0.0.1:{port}");
    let server = PrivateRedis::start_with(port, &["--requirepass", "pw-for-test"], Some(url));
    server.ready().await;
    assert!(
        !answers(&format!("redis://127.0.0.1:{port}")).await,
        "no answer without the password"
    );
}
