//! A platform key: events of two organizations in one batch, each stored in its own trail.

use std::time::Duration;

use stele_client::{Actor, Client, Event, Receipt};

use super::server::{list_all, markers};
use crate::support::{serve_sqlite, stele_ok};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_keys_batch_holds_the_events_of_two_organizations() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = stele_ok(&[
        "key",
        "create",
        "--platform",
        "--scopes",
        "ingest,read",
        "--name",
        "client-test",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .trim()
    .to_string();
    let client = Client::builder(&server.url, &key)
        // One batch for all of them.
        .batch_size(100)
        .flush_interval(Duration::from_secs(60))
        // The organization of the events that name none.
        .organization("tenant-a")
        .build()
        .unwrap();

    for n in 0..10u64 {
        let builder = Event::builder("login")
            .actor(Actor::user(format!("u{n}")))
            .metadata("run", "platform")
            .metadata("n", n);
        let builder = if n % 2 == 1 {
            builder.organization("tenant-b")
        } else {
            builder
        };
        client.record(builder.build().unwrap()).await.unwrap();
    }
    // The batch is sent with this one, at once; its receipt names the organization.
    let receipt = client
        .record_and_wait(
            Event::builder("logout")
                .actor(Actor::user("u1"))
                .organization("tenant-b")
                .metadata("run", "platform")
                .metadata("n", 10)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let Receipt::Stored {
        organization_id: Some(org_b),
        ..
    } = receipt
    else {
        panic!("{receipt:?}")
    };
    let stats = client.shutdown().await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (11, 0), "{stats:?}");
    assert_eq!(stats.retries, 0);

    let a = list_all(&server.url, &key, Some("tenant-a")).await;
    let b = list_all(&server.url, &key, Some("tenant-b")).await;
    assert_eq!(markers(&a, "platform"), [0, 2, 4, 6, 8]);
    assert_eq!(markers(&b, "platform"), [1, 3, 5, 7, 9, 10]);
    let by_id = list_all(&server.url, &key, Some(&org_b)).await;
    assert_eq!(markers(&by_id, "platform"), [1, 3, 5, 7, 9, 10]);
}
