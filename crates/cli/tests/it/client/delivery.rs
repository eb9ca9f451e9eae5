//! Recording through the client: every event stored once; refused events reported and the
//! rest of their batch stored; receipts for those who wait for them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stele_client::{Actor, Client, DeliveryError, Entity, Error, Event, Receipt};

use super::server::{list_all, markers};
use crate::support::serve_sqlite;

fn event(run: &str, n: u64) -> Event {
    Event::builder("update")
        .detailed_action("printer.rename")
        .actor(Actor::user(format!("u{}", n % 17)).email("ada@example.com"))
        .entity(Entity::new("Printer", n))
        .description(format!("Renamed printer {n}"))
        .metadata("run", run)
        .metadata("n", n)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_recorded_then_shut_down_are_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = server.admin_key();
    let client = Client::builder(&server.url, &key)
        .batch_size(500)
        .queue_capacity(10_000)
        .build()
        .unwrap();

    let started = Instant::now();
    for n in 0..10_000 {
        client.record(event("bulk", n)).await.unwrap();
    }
    let stats = client.shutdown().await.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "10,000 events through the client: {:.2} s, {:.0} events/s ({} retries)",
        elapsed.as_secs_f64(),
        10_000.0 / elapsed.as_secs_f64(),
        stats.retries
    );
    assert_eq!(stats.delivered, 10_000, "{stats:?}");
    assert_eq!((stats.failed, stats.queued), (0, 0), "{stats:?}");

    let entries = list_all(&server.url, &key, None).await;
    assert_eq!(markers(&entries, "bulk"), (0..10_000).collect::<Vec<u64>>());
    assert_eq!(
        entries.iter().filter(|e| e["action"] == "update").count(),
        10_000,
        "no other update was stored"
    );

    // Shut down: nothing more is taken.
    assert!(matches!(
        client.record(event("bulk", 10_000)).await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_is_reported_and_the_rest_of_its_batch_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = server.admin_key();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let reported = failures.clone();
    let client = Client::builder(&server.url, &key)
        .batch_size(10)
        .flush_interval(Duration::from_secs(60))
        .on_failure(move |failed| reported.lock().unwrap().push(failed))
        .build()
        .unwrap();

    // An hour ahead of the server's clock: fine by the builder, refused by the server (by more
    // than 5 minutes in the future), which refuses the whole request with it.
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut bad_key = String::new();
    for n in 0..10 {
        let mut builder = Event::builder("update")
            .actor(Actor::user("u1"))
            .metadata("run", "invalid")
            .metadata("n", n);
        if n == 5 {
            bad_key = format!("bad-{n}");
            builder = builder.occurred_at(future).idempotency_key(&bad_key);
        }
        client.record(builder.build().unwrap()).await.unwrap();
    }
    client.flush().await.unwrap();

    let failed = failures.lock().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].idempotency_key, bad_key);
    assert!(failed[0].json.contains("\"n\":5"), "{}", failed[0].json);
    match &failed[0].error {
        DeliveryError::Refused {
            status,
            code,
            details,
            ..
        } => {
            assert_eq!((*status, code.as_str()), (422, "invalid_event"));
            assert_eq!(
                details[0].field.as_deref(),
                Some("occurred_at"),
                "{details:?}"
            );
        }
        other => panic!("not a refusal: {other:?}"),
    }
    let stats = client.stats();
    assert_eq!((stats.delivered, stats.failed), (9, 1), "{stats:?}");
    let entries = list_all(&server.url, &key, None).await;
    assert_eq!(markers(&entries, "invalid"), [0, 1, 2, 3, 4, 6, 7, 8, 9]);

    // Waiting for it, the caller gets the refusal too.
    let refused = client
        .record_and_wait(
            Event::builder("update")
                .actor(Actor::user("u1"))
                .occurred_at(future)
                .build()
                .unwrap(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::Delivery(DeliveryError::Refused { status: 422, .. }))
        ),
        "{refused:?}"
    );
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_and_wait_returns_the_receipt_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = server.admin_key();
    let client = Client::builder(&server.url, &key)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();

    let started = Instant::now();
    let receipt = client
        .record_and_wait(
            Event::builder("login")
                .actor(Actor::user("u7"))
                .idempotency_key("login-u7-1")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "sent at once");
    let Receipt::Stored { id, seq, .. } = receipt.clone() else {
        panic!("{receipt:?}")
    };
    assert!(seq >= 1);
    let entry: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/events/{id}", server.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entry["action"], "login");
    assert_eq!(entry["seq"], seq);

    // The same event key again (another process, a day later): the original receipt, nothing
    // stored twice.
    let again = client
        .record_and_wait(
            Event::builder("login")
                .actor(Actor::user("u7"))
                .idempotency_key("login-u7-1")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(again, receipt);
    client.shutdown().await.unwrap();
}
