//! `@workos-inc/node` 8.13, the last WorkOS SDK that runs on Node 20, against a running Stele
//! server on the embedded database, through `workos_sdk.js`: an export created, polled and
//! downloaded through its url, a schema, an Admin Portal link, and the SDK's own exceptions
//! from Stele's errors (8.13 has no `listSchemas` or retention methods: the HTTP tests cover
//! those routes); and events through `workos_events.js`, with a retry after a lost answer.

use reqwest::StatusCode;
use serde_json::json;

use super::running::Running;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workos_sdk_exports_defines_schemas_and_links_to_the_portal() {
    let running = Running::start().await;
    let (url, key) = (running.url.clone(), running.key.clone());
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{url}/v1/organizations"))
        .bearer_auth(&key)
        .json(&json!({"name": "Acme", "external_id": "org_acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let events = json!({"events": [{
        "action": "login", "detailed_action": "user.signed_in",
        "occurred_at": "2024-01-15T10:00:00.000Z",
        "actor": {"type": "user", "id": "user_1", "name": "Jon"},
        "entity": {"type": "team", "id": "team_1"}
    }]});
    let recorded = client
        .post(format!("{url}/v1/events"))
        .bearer_auth(&key)
        .header("Stele-Organization", "org_acme")
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), StatusCode::CREATED);

    let report = running.node("workos_sdk.js", "org_acme").await;

    let created = &report["created"];
    assert_eq!(created["object"], "audit_log_export");
    assert_eq!(created["state"], "pending");
    assert!(created["createdAt"].is_string(), "{created}");
    let polled = &report["polled"];
    assert_eq!(polled["state"], "ready", "{polled}");
    assert_eq!(polled["id"], created["id"]);
    let download = &report["download"];
    assert_eq!(download["status"], 200, "{download}");
    let csv = download["body"].as_str().unwrap();
    assert_eq!(
        csv.lines().count(),
        2,
        "the header and the one sign-in: {csv}"
    );
    assert!(
        csv.contains("user.signed_in") && csv.contains("user_1"),
        "{csv}"
    );

    // The SDK's own reading of the schema it defined.
    let schema = &report["schema"];
    assert_eq!(schema["object"], "audit_log_schema");
    assert_eq!(schema["version"], 1);
    assert_eq!(schema["actor"], json!({"metadata": {"role": "string"}}));
    assert_eq!(
        schema["targets"],
        json!([{"type": "team", "metadata": {"size": "number"}}, {"type": "doc"}])
    );
    assert_eq!(schema["metadata"], json!({"extra": "boolean"}));

    let link = report["link"]["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{url}/embed/log?token=svt_")),
        "{link}"
    );
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Jon"));
    // The `log_streams` intent opens the organization's log streams.
    let link = report["streamsLink"]["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{url}/embed/streams?token=svt_")),
        "{link}"
    );
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Create a stream"));

    // Stele's errors become the SDK's exceptions with Stele's words (never `[object Object]`).
    let thrown = |case: &str| report[case]["thrown"].clone();
    let unknown = thrown("unknownExport");
    assert_eq!(unknown["name"], "NotFoundException", "{unknown}");
    assert_eq!(
        unknown["message"],
        "Audit Log Export not found: 'audit_log_export_01GBZK5MP7TD1YCFQHFR22180V'."
    );
    // (8.13 reads `X-Request-ID` into an exception only when the body does not parse: it looks
    // the header up by key on a fetch `Headers` object. The HTTP tests check the header is sent.)
    let nobody = thrown("unknownOrganization");
    assert_eq!(nobody["name"], "NotFoundException", "{nobody}");
    assert_eq!(nobody["message"], "Organization not found: 'nobody'.");
    let intent = thrown("otherIntent");
    assert_eq!(intent["name"], "UnprocessableEntityException", "{intent}");
    let bad_schema = thrown("badSchema");
    assert_eq!(bad_schema["name"], "BadRequestException", "{bad_schema}");
    assert_eq!(bad_schema["code"], "invalid_audit_log_action");
    assert_eq!(bad_schema["errors"][0]["field"], "action");
    assert_eq!(thrown("wrongKey")["name"], "UnauthorizedException");
    for case in [
        "unknownExport",
        "unknownOrganization",
        "otherIntent",
        "badSchema",
    ] {
        let message = thrown(case)["message"].to_string();
        assert!(!message.contains("[object Object]"), "{case}: {message}");
    }

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workos_sdk_records_events_and_a_retry_after_a_lost_answer_stores_one() {
    let running = Running::start().await;
    let report = running.node("workos_events.js", "org_acme").await;
    assert_eq!(report["created"], true, "{report}");

    // The first answer was lost after Stele stored the event; the SDK retried with the same key,
    // and Stele answered the retry from what it had stored.
    let seen = report["seen"].as_array().unwrap();
    assert_eq!(seen.len(), 2, "one attempt and one retry: {report}");
    assert_eq!(seen[0]["cut"], true);
    assert_eq!(seen[0]["idempotencyKey"], seen[1]["idempotencyKey"]);
    assert!(
        seen[0]["idempotencyKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("workos-node-")),
        "{report}"
    );
    assert_eq!(
        (seen[0]["status"].as_u64(), seen[1]["status"].as_u64()),
        (Some(200), Some(200))
    );

    // Exactly one entry, with everything the SDK sent; the organization was made on first use.
    let org = running
        .store
        .resolve_org("org_acme")
        .await
        .unwrap()
        .expect("created by the event");
    let page = running
        .store
        .list(
            org.key,
            &stele_core::PageRequest {
                filter: stele_core::EventFilter {
                    channel: Some("default".into()),
                    ..stele_core::EventFilter::default()
                },
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1, "{:?}", page.entries);
    let entry = page.entries[0].to_json();
    assert_eq!(entry["detailed_action"], "user.signed_in");
    assert_eq!(entry["action"], "login");
    assert_eq!(
        entry["actor"],
        json!({"type": "user", "id": "user_1", "name": "Jon",
               "metadata": {"role": "admin", "n": 3, "ok": true}})
    );
    assert_eq!(
        entry["entity"],
        json!({"type": "team", "id": "team_1", "name": "Team"})
    );
    assert_eq!(
        entry["related_entities"],
        json!([{"type": "document", "id": "doc_1", "name": "Plan", "metadata": {"size": 3}}])
    );
    assert_eq!(
        entry["context"],
        json!({"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"})
    );
    assert_eq!(entry["origin"], json!({"protocol": "workos", "version": 1}));

    // A target without a type: the SDK's own exception, naming the field.
    let invalid = &report["invalid"]["thrown"];
    assert_eq!(invalid["name"], "UnprocessableEntityException", "{report}");
    assert!(
        invalid["message"].as_str().unwrap().contains("required"),
        "{invalid}"
    );
    running.stop().await;
}
