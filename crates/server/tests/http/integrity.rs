use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stele_core::Seq;
use stele_core::checkpoint::{PublicKey, SignedCheckpoint};
use stele_store::Scope;

use super::helpers::{TestApp, assert_error, event, spawn_app, spawn_app_with};

/// The server's public key document (`GET /v1/integrity/public-key`, no API key needed).
async fn public_key_document(app: &TestApp) -> Value {
    app.get_anonymous("/v1/integrity/public-key")
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_chain_verifies_over_the_api_and_checkpoints_verify_with_the_public_key() {
    let app = spawn_app().await;
    app.record((0..5).map(|_| event("create")).collect()).await;
    app.store.checkpoint_now().await.unwrap();
    app.record(vec![event("update")]).await;

    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries"], 6);
    assert_eq!(report["checkpoints"], 1);
    assert!(report["problem"].is_null());

    let key: Value = public_key_document(&app).await;
    assert_eq!(key["algorithm"], "ed25519");
    let public = PublicKey::from_hex(key["public_key"].as_str().unwrap()).unwrap();

    let list = app.get_json("/v1/integrity/checkpoints").await;
    let checkpoints: Vec<SignedCheckpoint> =
        serde_json::from_value(list["checkpoints"].clone()).unwrap();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0].checkpoint.seq, Seq::new(5));
    checkpoints[0]
        .verify(&public)
        .expect("verifies with the public key alone");
    app.get_error(
        "/v1/integrity/checkpoints?limit=0",
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

#[tokio::test]
async fn integrity_endpoints_need_a_read_key_and_see_only_their_organization() {
    let app = spawn_app().await;
    app.record(vec![event("create")]).await;
    let ingest_only = app.key_for("default", &[Scope::Ingest]).await;
    app.get_error_as(
        &ingest_only,
        "/v1/integrity/verify",
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let other = app.key_for("other", &[Scope::Read]).await;
    let report: Value = app.get_json_as(&other, "/v1/integrity/verify").await;
    assert_eq!(report["entries"], 0);
    app.store.checkpoint_now().await.unwrap();
    let list: Value = app.get_json_as(&other, "/v1/integrity/checkpoints").await;
    assert_eq!(list["checkpoints"], json!([]));
}

#[tokio::test]
async fn erasure_replaces_a_person_everywhere_and_the_chain_still_verifies() {
    let app = spawn_app().await;
    let mut ada = event("update");
    ada["context"] = json!({"ip": "203.0.113.9", "user_agent": "Firefox"});
    app.record(vec![ada, event("login"), event("logout")]).await;
    app.store.checkpoint_now().await.unwrap();

    let reader = app.key_for("default", &[Scope::Read]).await;
    let denied = app.post_erasure_as(&reader, &json!({"actor": "u1"})).await;
    assert_error(denied, StatusCode::FORBIDDEN, "forbidden").await;
    let bad = app.post_erasure_as(&app.key, &json!({"who": "u1"})).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_body").await;

    let outcome = app
        .erase(&json!({"actor": "u1", "reason": "ticket 42"}))
        .await;
    assert_eq!(outcome["erased_entries"], 3);
    let pseudonym = outcome["pseudonym"].as_str().unwrap().to_string();
    assert!(pseudonym.starts_with("erased-"));

    let page = app.get_json("/v1/events?actor_type=all").await;
    let text = page.to_string();
    for secret in [
        "ada@example.com",
        "\"Ada\"",
        "203.0.113.9",
        "Firefox",
        "\"u1\"",
    ] {
        assert!(!text.contains(secret), "{secret} is gone: {text}");
    }
    assert_eq!(app.seqs(&format!("actor={pseudonym}")).await, vec![3, 2, 1]);
    let record = app
        .get_json("/v1/events?channel=compliance&actor_type=system")
        .await;
    assert_eq!(record["entries"][0]["detailed_action"], "stele.erasure");
    assert_eq!(record["entries"][0]["context"]["reason"], "ticket 42");

    // Erasing again gives the same pseudonym (it is stable) and finds nothing left to erase.
    let again = app.erase(&json!({"actor": "u1"})).await;
    assert_eq!(again["pseudonym"], pseudonym.as_str());
    assert_eq!(again["erased_entries"], 0);

    app.store.checkpoint_now().await.unwrap();
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries"], 5);
}

/// The person named by id, email and name is erased wherever they appear (as entity, in a
/// description, in changes and metadata), a secret logged by mistake is redacted after the fact,
/// the entry shows which fields were redacted and when, and the chain and proofs still verify.
#[tokio::test]
async fn erasure_by_every_identifier_and_redaction_after_the_fact_keep_the_chain() {
    use stele_core::proof::InclusionProof;

    let app = spawn_app().await;
    let deleted = json!({
        "action": "delete", "occurred_at": "2026-01-02T03:04:05Z",
        "description": "Deleted the account of José Álvarez",
        "actor": {"type": "user", "id": "admin-1"},
        "entity": {"type": "User", "id": "u-42", "name": "José Álvarez"},
        "before": {"email": "jose@example.com"}, "after": {},
        "metadata": {"ticket": "for jose@example.com"}
    });
    let door = json!({
        "action": "update", "occurred_at": "2026-01-02T03:04:06Z",
        "actor": {"type": "user", "id": "admin-1"},
        "entity": {"type": "Door", "id": "d1"},
        "before": {"door_hint": "under the mat"}, "after": {"door_hint": "left of the mailbox"}
    });
    let receipts = app.record(vec![deleted, door]).await;
    let door_id = receipts[1]["id"].as_str().unwrap().to_string();

    let none = app
        .post_erasure_as(&app.key, &json!({"name": "José Álvarez"}))
        .await;
    assert_error(none, StatusCode::BAD_REQUEST, "invalid_body").await;
    let outcome = app
        .erase(&json!({"id": "u-42", "email": "jose@example.com", "name": "José Álvarez"}))
        .await;
    assert_eq!(outcome["erased_entries"], 1);
    assert!(outcome["cleanup"]["finished_at"].is_i64(), "{outcome}");
    let text = app.get_json("/v1/events?actor_type=all").await.to_string();
    for gone in ["José", "jose@", "u-42"] {
        assert!(!text.contains(gone), "{gone} in {text}");
    }
    assert_eq!(app.seqs("entity_id=u-42").await, Vec::<i64>::new());

    // Redaction: a wrong path is named; the right one replaces the values.
    let path = format!("/v1/events/{door_id}/redactions");
    let wrong = app
        .send_json_as(
            Method::POST,
            &app.key,
            &path,
            &json!({"fields": ["metadata.nope"]}),
        )
        .await;
    let body = assert_error(wrong, StatusCode::BAD_REQUEST, "invalid_body").await;
    assert!(body.to_string().contains("metadata.nope"), "{body}");
    let reader = app.key_for("default", &[Scope::Read]).await;
    let denied = app
        .send_json_as(
            Method::POST,
            &reader,
            &path,
            &json!({"fields": ["changes.door_hint"]}),
        )
        .await;
    assert_error(denied, StatusCode::FORBIDDEN, "forbidden").await;
    let missing = app
        .send_json_as(
            Method::POST,
            &app.key,
            "/v1/events/019b7c72-ae20-7000-8000-000000000000/redactions",
            &json!({"fields": ["description"]}),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let done = app
        .send_json_as(
            Method::POST,
            &app.key,
            &path,
            &json!({"fields": ["changes.door_hint"], "reason": "logged by mistake"}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let shown = app.get_json(&format!("/v1/events/{door_id}")).await;
    assert_eq!(shown["changes"][0]["old"], "[REDACTED]");
    assert_eq!(shown["changes"][0]["new"], "[REDACTED]");
    assert_eq!(
        shown["redactions"][0]["fields"],
        json!(["changes.door_hint"])
    );
    assert_eq!(shown["redactions"][0]["reason"], "logged by mistake");
    assert!(!shown.to_string().contains("under the mat"));
    // Exports say the same: the entry's `redactions` (JSON, NDJSON) or column (CSV).
    for format in ["ndjson", "json"] {
        let text = app
            .get(&format!("/v1/export?format={format}&actor_type=all"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!text.contains("under the mat"), "{format}: {text}");
        let entries: Vec<Value> = if format == "json" {
            serde_json::from_str::<Value>(&text).unwrap()["entries"]
                .as_array()
                .unwrap()
                .clone()
        } else {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        for e in &entries {
            if e["id"] == door_id.as_str() {
                assert_eq!(e["redactions"], shown["redactions"], "{format}");
            } else {
                assert!(e.get("redactions").is_none(), "{format}: {e}");
            }
        }
    }
    let csv = app
        .get("/v1/export?format=csv&actor_type=all")
        .await
        .text()
        .await
        .unwrap();
    assert!(!csv.contains("under the mat"), "{csv}");
    assert!(csv.lines().next().unwrap().ends_with(",origin,redactions"));
    let door_row = csv.lines().find(|l| l.starts_with(&door_id)).unwrap();
    assert!(
        door_row.ends_with(&format!(
            ",\"{}\"",
            shown["redactions"].to_string().replace('"', "\"\"")
        )),
        "{door_row}"
    );

    app.store.checkpoint_now().await.unwrap();
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    let public: Value = public_key_document(&app).await;
    let key = PublicKey::from_hex(public["public_key"].as_str().unwrap()).unwrap();
    for r in &receipts {
        let id = r["id"].as_str().unwrap();
        let proof: InclusionProof =
            serde_json::from_value(app.get_json(&format!("/v1/events/{id}/proof")).await).unwrap();
        proof
            .verify(&key)
            .expect("an erased or redacted entry's proof verifies");
    }
}

/// Past 256 entries proofs are built from stored subtrees: entries on both sides of each
/// stored level, at the edges of the tree, prove their inclusion, and a checkpoint in the middle
/// of a block is consistent with a later one.
#[tokio::test]
async fn proofs_in_a_trail_of_a_thousand_entries_verify() {
    use stele_core::proof::{ConsistencyProof, InclusionProof};

    let app = spawn_app().await;
    let mut ids = Vec::new();
    for batch in 0..11 {
        let recorded = app
            .record((0..100).map(|_| event("create")).collect())
            .await;
        ids.extend(
            recorded
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        if batch == 2 {
            app.store.checkpoint_now().await.unwrap();
        }
    }
    let last = app.record((0..13).map(|_| event("update")).collect()).await;
    ids.extend(last.iter().map(|e| e["id"].as_str().unwrap().to_string()));
    app.store.checkpoint_now().await.unwrap();
    let public: Value = public_key_document(&app).await;
    let key = PublicKey::from_hex(public["public_key"].as_str().unwrap()).unwrap();

    for seq in [1, 2, 255, 256, 257, 300, 512, 513, 1024, 1025, 1100, 1113] {
        let id = &ids[seq - 1];
        let proof: InclusionProof =
            serde_json::from_value(app.get_json(&format!("/v1/events/{id}/proof")).await).unwrap();
        assert_eq!((proof.leaf_index, proof.tree_size), (seq as u64 - 1, 1113));
        proof
            .verify(&key)
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
    }
    let consistency: ConsistencyProof = serde_json::from_value(
        app.get_json("/v1/integrity/consistency?from=300&to=1113")
            .await,
    )
    .unwrap();
    consistency.verify(&key).expect("1113 extends 300");
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify_with_the_public_key_alone() {
    use stele_core::proof::{ConsistencyProof, InclusionProof, ProofError};

    let app = spawn_app().await;
    let first = app.record((0..3).map(|_| event("create")).collect()).await;
    let early = first[1]["id"].as_str().unwrap().to_string();
    // Not covered by a checkpoint yet: the client is told so.
    app.get_error(
        &format!("/v1/events/{early}/proof"),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    app.store.checkpoint_now().await.unwrap();
    let later = app.record((0..4).map(|_| event("update")).collect()).await;
    app.store.checkpoint_now().await.unwrap();
    let public: Value = public_key_document(&app).await;
    let key = PublicKey::from_hex(public["public_key"].as_str().unwrap()).unwrap();

    for id in [
        early.as_str(),
        first[0]["id"].as_str().unwrap(),
        later[3]["id"].as_str().unwrap(),
    ] {
        let proof: InclusionProof =
            serde_json::from_value(app.get_json(&format!("/v1/events/{id}/proof")).await).unwrap();
        assert_eq!(proof.tree_size, 7, "proved against the latest checkpoint");
        proof.verify(&key).expect("the proof verifies");

        // A value committed in the clear (the action), and an erasable one (the description,
        // behind its own commitment).
        let mut forged = proof.clone();
        forged.entry["action"] = json!("delete");
        assert_eq!(forged.verify(&key), Err(ProofError::EntryMismatch));
        let mut forged = proof.clone();
        forged.entry["description"] = json!("something else happened");
        assert_eq!(forged.verify(&key), Err(ProofError::PersonalMismatch));
        let mut someone_else = proof.clone();
        someone_else.entry["actor"]["email"] = json!("eve@example.com");
        assert_eq!(someone_else.verify(&key), Err(ProofError::PersonalMismatch));
        let mut moved = proof.clone();
        moved.path.reverse();
        if proof.path.len() > 1 {
            assert_eq!(moved.verify(&key), Err(ProofError::NotIncluded));
        }
    }

    let consistency: ConsistencyProof =
        serde_json::from_value(app.get_json("/v1/integrity/consistency?from=3&to=7").await)
            .unwrap();
    consistency
        .verify(&key)
        .expect("the later tree extends the earlier one");
    let mut rewritten = consistency.clone();
    rewritten.from.checkpoint.merkle_root[0] ^= 1;
    assert!(rewritten.verify(&key).is_err());
    for query in ["from=4&to=7", "from=7&to=3", "to=7", "from=x&to=7"] {
        let response = app.get(&format!("/v1/integrity/consistency?{query}")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    }
}

/// The API checks what came after the last checkpoint a verification passed, or everything with
/// `full=true`.
#[tokio::test]
async fn verify_checks_what_is_new_unless_full() {
    let app = spawn_app().await;
    app.record((0..3).map(|_| event("create")).collect()).await;
    app.store.checkpoint_now().await.unwrap();
    let first = app.get_json("/v1/integrity/verify").await;
    assert_eq!(
        (
            &first["ok"],
            &first["entries"],
            &first["since_checkpoint_seq"]
        ),
        (&json!(true), &json!(3), &Value::Null),
        "nothing verified before: everything: {first}"
    );
    app.record((0..2).map(|_| event("update")).collect()).await;
    app.store.checkpoint_now().await.unwrap();
    let next = app.get_json("/v1/integrity/verify").await;
    assert_eq!(
        (
            &next["ok"],
            &next["entries"],
            &next["first_seq"],
            &next["since_checkpoint_seq"]
        ),
        (&json!(true), &json!(2), &json!(4), &json!(3)),
        "{next}"
    );
    let full = app.get_json("/v1/integrity/verify?full=true").await;
    assert_eq!(
        (&full["entries"], &full["since_checkpoint_seq"]),
        (&json!(5), &Value::Null),
        "{full}"
    );
    let response = app.get("/v1/integrity/verify?full=yes").await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    assert_eq!(body["error"]["details"][0]["field"], "full", "{body}");
}

/// An operator can turn the background verification off; `/readyz` says so.
#[tokio::test]
async fn background_verification_can_be_turned_off() {
    let app = spawn_app_with(|config| {
        config.verify_every.new_entries = std::time::Duration::ZERO;
    })
    .await;
    let ready = app.get_anonymous("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["integrity"]["status"], "off", "{body}");
}
