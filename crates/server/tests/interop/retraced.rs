//! `@retracedhq/retraced`'s publisher client against a running Stele server (only the endpoint's
//! host is Stele's): events and a bulk whose receipt hashes the library verifies itself (it
//! throws on a mismatch), the library's own search of the whole project paged to the end, a
//! viewer token that opens the group's log, and Retraced's refusal of an event without `crud`.

use serde_json::{Value, json};
use stele_core::{EventFilter, PageRequest};

use super::running::Running;

/// Every entry of the organization with this external id that a client sent (the default
/// channel; Stele's own entries about the organization are elsewhere), newest first.
async fn entries(running: &Running, group: &str) -> Vec<Value> {
    let org = running
        .store
        .resolve_org(group)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("group {group} has no organization"));
    let page = running
        .store
        .list(
            org.key,
            &PageRequest {
                filter: EventFilter {
                    channel: Some("default".into()),
                    actor_types: stele_core::ActorType::ALL.to_vec(),
                    ..EventFilter::default()
                },
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    page.entries.iter().map(|e| e.to_json()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retraced_client_reports_events_whose_hashes_it_verifies() {
    let running = Running::start().await;
    let project = running.store.platform_org().await.unwrap().id;
    let report = running.node("retraced_publisher.js", &project).await;

    // The library resolved every call: each receipt hash matched its own computation.
    let one = report["one"].as_str().unwrap().to_string();
    let bulk: Vec<String> = report["bulk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert_eq!(bulk.len(), 3, "{report}");

    // The groups became organizations, the events entries with everything sent.
    let acme = entries(&running, "acme").await;
    assert_eq!(acme.len(), 3, "{acme:?}");
    let first = acme.iter().find(|e| e["id"] == one.as_str()).unwrap();
    assert_eq!(first["detailed_action"], "document.update");
    assert_eq!(first["action"], "update");
    assert_eq!(first["occurred_at"], "2024-05-01T12:34:56.789Z");
    assert_eq!(
        first["actor"],
        json!({"type": "user", "id": "user@acme.test", "name": "Jo User",
               "href": "https://acme.test/u/1", "metadata": {"dept": "ops"}})
    );
    assert_eq!(
        first["entity"],
        json!({"type": "document", "id": "doc:42", "name": "Q2 plan",
               "href": "https://acme.test/d/42", "metadata": {"size": "10"}})
    );
    assert_eq!(first["context"]["ip"], "203.0.113.7");
    assert_eq!(first["description"], "Updated the doc");
    assert_eq!(
        first["metadata"],
        json!({"b;k": "v=1", "a": "50%", "ключ": "значение"})
    );
    assert_eq!(
        first["origin"],
        json!({"protocol": "retraced", "crud": "u", "group_name": "Acme Inc",
               "metadata": {"trace": "abc"}, "external_id": "ext:1", "component": "web",
               "version": "abc123"})
    );
    let failed = acme.iter().find(|e| e["id"] == bulk[2].as_str()).unwrap();
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["action"], "delete");
    let globex = entries(&running, "globex").await;
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0]["id"], bulk[1].as_str());
    assert_eq!(globex[0]["origin"]["is_anonymous"], true);

    // The library's own search of the project: every group at once, paged as it pages (two a
    // page), each event once, read back as the library reads Retraced's (fields as maps). `crud:
    // c,u,d` leaves out the bulk's read; Stele's own entries about the groups (each made on
    // first use, a viewer token issued) are in their trails too.
    let search = &report["search"];
    assert_eq!(search["totalCount"], 6, "{search}");
    let found: Vec<&Value> = search["pages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|page| page.as_array().unwrap())
        .collect();
    let mut ids: Vec<&str> = found.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "each event once: {search}");
    for sent in [&one, &bulk[1], &bulk[2]] {
        assert!(ids.contains(&sent.as_str()), "{sent} in {search}");
    }
    assert!(!ids.contains(&bulk[0].as_str()), "a read is not c, u or d");
    let document = found.iter().find(|e| e["id"] == one.as_str()).unwrap();
    assert_eq!(document["group"]["id"], "acme");
    assert_eq!(document["crud"], "u");
    assert_eq!(document["fields"]["b;k"], "v=1", "{document}");
    assert_eq!(document["actor"]["fields"]["dept"], "ops", "{document}");

    // The viewer token opens the group's embedded log.
    let token = report["token"].as_str().unwrap();
    assert!(token.starts_with("svt_"), "{report}");
    let page = reqwest::get(format!("{}/embed/log?token={token}", running.url))
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Jo User"));

    // Retraced's server requires `crud` (the library does not): refused, nothing stored.
    assert_eq!(
        report["refused"]["thrown"],
        "Unexpected HTTP response: 400 Bad Request"
    );
    assert_eq!(entries(&running, "acme").await.len(), 3);
    running.stop().await;
}
