//! Through failures: a server killed while the client keeps recording, then started again on the
//! same data and port; an answer lost after the server committed. Every event is stored exactly
//! once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stele_client::{Actor, Client, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::server::{list_all, markers, until};
use crate::support::{serve_sqlite, serve_sqlite_on};

fn event(run: &str, n: u64) -> Event {
    Event::builder("sync")
        .actor(Actor::scheduler().id("nightly"))
        .metadata("run", run)
        .metadata("n", n)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_started_again_loses_nothing_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = server.admin_key();
    let port = server.port();
    let client = Client::builder(&server.url, &key)
        .batch_size(100)
        .flush_interval(Duration::from_millis(50))
        // Enough to outlast the restart of a debug build on a busy machine.
        .max_retries(10_000)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Some stored before the kill.
    for n in 0..1000 {
        client.record(event("restart", n)).await.unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(client.stats().delivered, 1000);

    // More, recorded at a steady pace all through the kill and the restart: the second half
    // only once the server is dead, however slow the machine.
    let killed = Arc::new(tokio::sync::Notify::new());
    let recorder = tokio::spawn({
        let client = client.clone();
        let killed = killed.clone();
        async move {
            for n in 1000..5000 {
                if n == 3000 {
                    killed.notified().await;
                }
                client.record(event("restart", n)).await.unwrap();
                if n % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    });
    until(
        Duration::from_secs(60),
        "part of the rest delivered",
        || client.stats().delivered >= 1300,
    )
    .await;
    server.kill();
    killed.notify_one();
    let retries = client.stats().retries;
    until(
        Duration::from_secs(60),
        "the client meets the dead server",
        || client.stats().retries >= retries + 2,
    )
    .await;
    let delivered_while_down = client.stats().delivered;
    let server = serve_sqlite_on(dir.path(), port);
    recorder.await.unwrap();
    let stats = client.shutdown().await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (5000, 0), "{stats:?}");
    assert!(
        delivered_while_down < 5000,
        "events waited for the restart: {delivered_while_down}"
    );

    let entries = list_all(&server.url, &key, None).await;
    assert_eq!(
        markers(&entries, "restart"),
        (0..5000).collect::<Vec<u64>>(),
        "each event stored exactly once"
    );
}

/// A proxy to the server that passes the first request on, then hangs up on the client
/// without relaying the answer (the server committed: its 201 had begun to arrive), as a
/// network that fails at the worst moment would. Later connections are passed through.
async fn proxy_losing_the_first_answer(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lost = Arc::new(AtomicUsize::new(0));
    let count = lost.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut outbound = TcpStream::connect(&upstream).await.unwrap();
            if first {
                first = false;
                let count = count.clone();
                tokio::spawn(async move {
                    let (mut in_read, _in_write) = inbound.split();
                    let (mut out_read, mut out_write) = outbound.split();
                    let mut answer = [0u8; 1];
                    let forward = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = in_read.read(&mut buf).await.unwrap_or(0);
                            if n == 0 || out_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! {
                        _ = forward => {}
                        read = out_read.read(&mut answer) => {
                            if matches!(read, Ok(1)) {
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                    // Both sockets close here, the answer unsent.
                });
            } else {
                tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        }
    });
    (url, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lost_after_the_commit_is_sent_again_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = server.admin_key();
    let (proxy, lost) =
        proxy_losing_the_first_answer(server.url.trim_start_matches("http://").to_string()).await;
    let client = Client::builder(&proxy, &key)
        .batch_size(50)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .unwrap();
    for n in 0..50 {
        client.record(event("lost", n)).await.unwrap();
    }
    let stats = client.shutdown().await.unwrap();
    assert_eq!(lost.load(Ordering::SeqCst), 1, "one answer was lost");
    assert!(stats.retries >= 1, "{stats:?}");
    assert_eq!((stats.delivered, stats.failed), (50, 0), "{stats:?}");
    let entries = list_all(&server.url, &key, None).await;
    assert_eq!(markers(&entries, "lost"), (0..50).collect::<Vec<u64>>());
}
