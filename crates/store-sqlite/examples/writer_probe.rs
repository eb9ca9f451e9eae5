use std::sync::Arc;
use std::time::Instant;
use stele_store::Store;
use stele_store::conformance::{event, request};
use stele_store_sqlite::SqliteStore;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let dir = tempfile::TempDir::new_in(".").unwrap_or(dir);
    std::mem::forget(tempfile::tempdir());
    let _keep = std::env::var("KEEP").is_ok();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let org = store.create_org("o").await.unwrap().key;
    let now = stele_core::time::now_millis() - 86_400_000;
    let mut batches = vec![];
    for b in 0..n / 500 {
        let evs: Vec<_> = (0..500)
            .map(|i| {
                let k = b * 500 + i;
                let mut e = event(
                    ["create", "update", "delete", "login"][k % 4],
                    now + k as i64,
                );
                e.detailed_action = Some(format!("thing{}.op", k % 40));
                e.description = Some(format!(
                    "User renamed printer number {} in farm {}",
                    k % 1000,
                    k % 17
                ));
                e.entity = Some(stele_core::Entity {
                    kind: format!("T{}", k % 20),
                    id: Some(format!("{}", k % 200000)),
                    name: Some("Printer".into()),
                });
                e.context.ip = Some(format!("10.0.{}.{}", k % 4, k % 250));
                e.context.correlation_id = Some(format!("c{}", k / 3));
                e.actor.email = Some(format!("user{}@example.com", k % 2000));
                e.actor.id = Some(format!("u{}", k % 2000));
                e.changes = vec![
                    stele_core::Change {
                        field: "name".into(),
                        old: Some("a".into()),
                        new: Some("b".into()),
                    },
                    stele_core::Change {
                        field: "status".into(),
                        old: Some("idle".into()),
                        new: Some("printing".into()),
                    },
                ];
                e
            })
            .collect();
        batches.push(request(evs));
    }
    let t = Instant::now();
    let mut tasks = vec![];
    let per = batches.len() / 4;
    for chunk in batches.chunks(per.max(1)) {
        let chunk = chunk.to_vec();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for r in chunk {
                store.append(org, r).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let el = t.elapsed();
    println!(
        "{} events in {:?}: {:.0} events/s",
        n,
        el,
        n as f64 / el.as_secs_f64()
    );
    drop(store);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        println!("{:?} {}", e.file_name(), e.metadata().unwrap().len());
    }
    let size: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "disk {} bytes, {:.0} bytes/event",
        size,
        size as f64 / n as f64
    );
    if _keep {
        println!("kept {:?}", dir.keep());
    }
}
