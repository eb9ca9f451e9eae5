//! Retention: the settings API with its floor, the daily schedule on an injected clock (tests
//! move time; nothing sleeps until 03:00), the run's own entry, archive-then-prune, an archive
//! that cannot be written (nothing pruned, shown in /readyz), and verification after a prune.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_core::time::{Millis, format_rfc3339, now_millis};
use stele_service::clock::{ManualClock, SharedClock};
use stele_service::retention::{self, Trigger};
use stele_store::Scope;

use super::helpers::{TestApp, spawn_app, spawn_app_with};

const DAY: Millis = 24 * 3600 * 1000;

impl TestApp {
    async fn put_settings_as(&self, key: &str, body: &Value) -> reqwest::Response {
        self.send_json_as(reqwest::Method::PUT, key, "/v1/settings", body)
            .await
    }

    async fn put_settings_raw(&self, body: &str) -> reqwest::Response {
        self.send_raw(
            reqwest::Method::PUT,
            "/v1/settings",
            "application/x-www-form-urlencoded",
            body.to_string(),
        )
        .await
    }

    /// The retention runs recorded in the default organization's trail, newest first.
    async fn prune_entries(&self) -> Vec<Value> {
        let page = self
            .get_json("/v1/events?actor_type=system&detailed_action=retention.prune&limit=100")
            .await;
        page["entries"].as_array().unwrap().clone()
    }

    /// Waits (bounded) until `n` retention runs are recorded: the scheduler runs on its own task.
    async fn wait_for_prune_entries(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let found = self.prune_entries().await;
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no {n} retention run(s) recorded within 5 s");
    }
}

fn aged(action: &str, channel: &str, age_days: i64, now: Millis) -> Value {
    json!({
        "action": action,
        "channel": channel,
        "occurred_at": format_rfc3339(now - age_days * DAY),
        "actor": {"type": "user", "id": "u1", "email": "ada@example.com"},
    })
}

/// Today's 02:59 UTC, by the wall clock: the manual clock starts there, a minute before the
/// default schedule, so entries recorded now are "now" for both clocks.
fn a_minute_before_three() -> Millis {
    let now = now_millis();
    now.div_euclid(DAY) * DAY + (3 * 60 - 1) * 60_000
}

#[tokio::test]
async fn settings_default_to_a_year_refuse_less_than_30_days_and_record_changes() {
    let app = spawn_app().await;
    let body = app.get_json("/v1/settings").await;
    assert_eq!(
        body,
        json!({"retention_days": 365, "channel_retention_days": {}, "minimum_retention_days": 30,
               "enabled": true, "ip_allowlist": [], "embed_origins": [], "embed_theme": {},
               "redaction": stele_core::redact::RedactionRules::default()})
    );

    for (bad, field, says) in [
        (
            json!({"retention_days": 29}),
            "retention_days",
            "at least 30 days",
        ),
        (
            json!({"retention_days": 0}),
            "retention_days",
            "at least 30 days",
        ),
        (
            json!({"retention_days": "365"}),
            "retention_days",
            "whole number",
        ),
        (
            json!({"retention_days": 36501}),
            "retention_days",
            "at most",
        ),
        (json!({}), "retention_days", "required"),
        (
            json!({"retention_days": 365, "channel_retention_days": {"auth": 7}}),
            "channel_retention_days.auth",
            "at least 30 days",
        ),
        (
            json!({"retention_days": 365, "channel_retention_days": {"Bad Name": 90}}),
            "channel_retention_days.Bad Name",
            "channel name",
        ),
        (
            json!({"retention_days": 365, "keep": true}),
            "keep",
            "not a setting",
        ),
    ] {
        let response = app.put_settings_as(&app.key, &bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(
            error["error"]["details"][0]["field"], field,
            "{bad}: {error}"
        );
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{bad}: {message}");
    }
    let response = app.put_settings_raw("{not json").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get_json("/v1/settings").await["retention_days"],
        365,
        "a refused change changes nothing"
    );
    // `curl -d` sends a form content type; the body is JSON all the same.
    let response = app.put_settings_raw(r#"{"retention_days": 365}"#).await;
    assert_eq!(response.status(), StatusCode::OK);

    let reader = app.key_for("default", &[Scope::Read]).await;
    let response = app
        .put_settings_as(&reader, &json!({"retention_days": 400}))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "admin scope only");

    let wanted = json!({
        "retention_days": 400,
        "channel_retention_days": {"auth": 90, "compliance": 2555, "legal": null},
    });
    let response = app.put_settings_as(&app.key, &wanted).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = app.get_json("/v1/settings").await;
    assert_eq!(body["retention_days"], 400);
    assert_eq!(
        body["channel_retention_days"],
        wanted["channel_retention_days"]
    );

    let forever = app
        .put_settings_as(&app.key, &json!({"retention_days": null}))
        .await;
    assert_eq!(forever.status(), StatusCode::OK);
    assert_eq!(
        app.get_json("/v1/settings").await["retention_days"],
        Value::Null
    );

    // Each change is in the trail with the old and new values.
    let changes = app
        .get_json("/v1/events?detailed_action=settings.update&actor_type=api")
        .await;
    let changes = changes["entries"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0]["channel"], "security");
    assert_eq!(
        changes[0]["changes"],
        json!([
            {"field": "retention_days", "old": 400, "new": null},
            {"field": "channel_retention_days",
             "old": {"auth": 90, "compliance": 2555, "legal": null}, "new": {}},
        ])
    );
    assert_eq!(
        changes[1]["changes"][0],
        json!({"field": "retention_days", "old": 365, "new": 400})
    );

    // Another organization keeps its own settings.
    let other = app.key_for("other", &[Scope::Read]).await;
    let theirs: Value = app.get_json_as(&other, "/v1/settings").await;
    assert_eq!(theirs["retention_days"], 365);
}

#[tokio::test]
async fn a_patch_changes_only_the_settings_it_sends() {
    let app = spawn_app().await;
    let wanted = json!({"retention_days": 400, "channel_retention_days": {"auth": 90}});
    let response = app.put_settings_as(&app.key, &wanted).await;
    assert_eq!(response.status(), StatusCode::OK);

    // The README's example, as written.
    let response = app
        .send_json_as(
            reqwest::Method::PATCH,
            &app.key,
            "/v1/settings",
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = app.get_json("/v1/settings").await;
    assert_eq!(body["enabled"], false);
    assert_eq!(body["retention_days"], 400, "{body}");
    assert_eq!(body["channel_retention_days"], json!({"auth": 90}));

    // A field sent is replaced whole; a bad one is named and changes nothing.
    let patch = |body: Value| {
        let app = &app;
        async move {
            app.send_json_as(reqwest::Method::PATCH, &app.key, "/v1/settings", &body)
                .await
        }
    };
    let response = patch(json!({"channel_retention_days": {"compliance": 2555}})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = patch(json!({"enabled": true, "retention_days": 7})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["details"][0]["field"], "retention_days");
    let body = app.get_json("/v1/settings").await;
    assert_eq!(
        (
            &body["enabled"],
            &body["retention_days"],
            &body["channel_retention_days"]
        ),
        (&json!(false), &json!(400), &json!({"compliance": 2555}))
    );

    let reader = app.key_for("default", &[Scope::Read]).await;
    let response = app
        .send_json_as(
            reqwest::Method::PATCH,
            &reader,
            "/v1/settings",
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "admin scope only");
}

#[tokio::test]
async fn the_daily_schedule_prunes_at_three_and_records_every_run() {
    let start = a_minute_before_three();
    let clock = ManualClock::starting_at(start);
    let shared = SharedClock(clock.clone());
    let app = spawn_app_with(|c| c.clock = shared).await;
    let now = now_millis();
    app.record(vec![
        aged("old_1", "default", 400, now),
        aged("old_2", "billing", 366, now),
        aged("auth_old", "auth", 100, now),
        aged("auth_new", "auth", 10, now),
        aged("recent", "default", 1, now),
    ])
    .await;
    let response = app
        .put_settings_as(
            &app.key,
            &json!({"retention_days": 365, "channel_retention_days": {"auth": 90}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // 03:00: the scheduler wakes and prunes.
    clock.advance(Duration::from_secs(60));
    let runs = app.wait_for_prune_entries(1).await;
    let run = &runs[0];
    assert_eq!(run["actor"]["type"], "system");
    assert_eq!(run["channel"], "compliance");
    assert_eq!(run["outcome"], "success");
    assert_eq!(run["context"]["source"], "scheduler");
    assert_eq!(
        run["metadata"],
        json!({
            "archived": 0,
            "cutoff": format_rfc3339(start + 60_000 - 365 * DAY),
            "cutoff.auth": format_rfc3339(start + 60_000 - 90 * DAY),
            "removed.auth": 1,
            "removed.billing": 1,
            "removed.default": 1,
            "removed_total": 3,
        })
    );

    let left = app.get_json("/v1/events?limit=100").await;
    let actions: Vec<&str> = left["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| ["old_1", "old_2", "auth_old", "auth_new", "recent"].contains(a))
        .collect();
    assert_eq!(actions, ["recent", "auth_new"]);

    // Verification after the prune: intact from the new first entry, the pruned part anchored.
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["pruned_entries"], 3, "{report}");
    assert!(report["anchor_checkpoint_seq"].is_i64(), "{report}");

    // A day later: a run that removes nothing still leaves its entry.
    clock.advance(Duration::from_secs(24 * 3600));
    let runs = app.wait_for_prune_entries(2).await;
    assert_eq!(runs[0]["metadata"]["removed_total"], 0);
    assert!(runs[0]["metadata"].get("removed.default").is_none());
    let ready = app.get_json("/readyz").await;
    assert_eq!(ready["checks"]["retention"]["status"], "ok", "{ready}");
    assert_eq!(
        ready["checks"]["retention"]["last_run_at"],
        format_rfc3339(start + 60_000 + 24 * 3600 * 1000)
    );
}

#[tokio::test]
async fn entries_are_archived_before_they_are_pruned() {
    let app = spawn_app().await;
    let now = now_millis();
    let events: Vec<Value> = (0..30)
        .map(|i| aged(&format!("old_{i}"), "default", 400 + i, now))
        .chain([aged("recent", "default", 3, now)])
        .collect();
    app.record(events).await;
    let archive_dir = app.data_dir().join("archive");
    let sink = stele_service::retention::archive_sink::sink(Some(&archive_dir));
    let reports = retention::prune_all(app.store.as_ref(), sink, now, Trigger::Command, None)
        .await
        .unwrap();
    let summary = &reports[0].summary;
    assert_eq!((summary.removed_total, summary.archived), (30, 30));
    assert!(summary.error.is_none());

    let checked = stele_archive::verify(&archive_dir).expect("archive verifies");
    assert!(checked.problems.is_empty(), "{checked:?}");
    assert_eq!(checked.entries, 30);
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(
        (report["ok"].clone(), report["pruned_entries"].clone()),
        (json!(true), json!(30))
    );
}

#[tokio::test]
async fn an_archive_that_cannot_be_written_blocks_the_prune_and_shows_in_readyz() {
    let start = a_minute_before_three();
    let clock = ManualClock::starting_at(start);
    let shared = SharedClock(clock.clone());
    let blocked = tempfile::NamedTempFile::new().unwrap();
    // A directory inside a regular file can never be created.
    let archive_dir = blocked.path().join("archive");
    let app = spawn_app_with(|c| {
        c.clock = shared;
        c.archive_dir = Some(archive_dir.clone());
    })
    .await;
    let now = now_millis();
    app.record(vec![
        aged("old", "default", 400, now),
        aged("new", "default", 1, now),
    ])
    .await;

    clock.advance(Duration::from_secs(60));
    let runs = app.wait_for_prune_entries(1).await;
    assert_eq!(runs[0]["outcome"], "failure");
    assert_eq!(runs[0]["metadata"]["removed_total"], 0);
    let error = runs[0]["metadata"]["error"].as_str().unwrap();
    assert!(error.contains("archive"), "{error}");

    let old = app.get_json("/v1/events?action=old").await;
    assert_eq!(
        old["entries"].as_array().unwrap().len(),
        1,
        "nothing was pruned"
    );
    let ready = app.get_json("/readyz").await;
    assert_eq!(
        ready["status"], "ready",
        "ingest and reads still work: {ready}"
    );
    assert_eq!(ready["checks"]["retention"]["status"], "failing", "{ready}");
    assert!(
        ready["checks"]["retention"]["archive_error"]
            .as_str()
            .unwrap()
            .contains("archive"),
        "{ready}"
    );
}

/// An erasure's record is what vouches for the pseudonyms in the entries it erased, so it stays
/// as long as any of them does, even when its own channel's window is shorter.
#[tokio::test]
async fn an_erasure_record_outlives_its_channel_window_while_its_entries_remain() {
    let app = spawn_app().await;
    let now = now_millis();
    app.record(vec![
        aged("kept", "default", 10, now),
        aged("gone", "auth", 10, now),
    ])
    .await;
    let response = app
        .put_settings_as(
            &app.key,
            &json!({"retention_days": 365, "channel_retention_days": {"compliance": 30, "auth": 35}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.erase(&json!({"actor": "u1"})).await;
    let erasures = "/v1/events?actor_type=system&detailed_action=stele.erasure";
    let record = app.get_json(erasures).await["entries"][0].clone();
    assert_eq!(
        record["entity_ids"].as_array().unwrap().len(),
        2,
        "{record}"
    );

    // 31 days on, the erasure record is past the compliance window, but "kept" is not past its
    // own: the record stays, and the erased entry still verifies.
    let prune = |days: i64| {
        retention::prune_all(
            app.store.as_ref(),
            None,
            now + days * DAY,
            Trigger::Command,
            None,
        )
    };
    prune(31).await.unwrap();
    assert_eq!(
        app.get_json(erasures).await["entries"][0]["id"],
        record["id"]
    );
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");

    // Once no erased entry remains, the record goes with its window.
    app.put_settings_as(
        &app.key,
        &json!({"retention_days": 30, "channel_retention_days": {"compliance": 30}}),
    )
    .await;
    prune(400).await.unwrap();
    prune(400).await.unwrap();
    let left = app.get_json(erasures).await;
    assert_eq!(left["entries"].as_array().unwrap().len(), 0, "{left}");
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");
}

/// Every archived line of the archive in `dir`, decompressed, in the manifest's order.
fn archived_text(dir: &std::path::Path) -> String {
    let manifest = stele_archive::read_manifest(dir).unwrap().unwrap();
    let mut text = String::new();
    for s in manifest.segments {
        let file = std::fs::File::open(dir.join(&s.file)).unwrap();
        std::io::Read::read_to_string(&mut zstd::Decoder::new(file).unwrap(), &mut text).unwrap();
    }
    text
}

/// A server archiving to a fresh directory (the `TempDir` owns it; the path is its `archive`
/// folder), with two of the person's entries past the default window and one recent, and now.
async fn archived_person_app() -> (tempfile::TempDir, std::path::PathBuf, TestApp, Millis) {
    let archive_dir = tempfile::tempdir().unwrap();
    let dir = archive_dir.path().join("archive");
    let app = spawn_app_with(|c| c.archive_dir = Some(dir.clone())).await;
    let now = now_millis();
    app.record(vec![
        aged("old_1", "default", 400, now),
        aged("old_2", "default", 399, now),
        aged("recent", "default", 1, now),
    ])
    .await;
    (archive_dir, dir, app, now)
}

/// GDPR erasure reaches entries that retention already moved to the archive.
#[tokio::test]
async fn an_erasure_reaches_the_archive() {
    let (_archive_dir, dir, app, now) = archived_person_app().await;
    let sink = stele_service::retention::archive_sink::sink(Some(&dir));
    let reports = retention::prune_all(app.store.as_ref(), sink, now, Trigger::Command, None)
        .await
        .unwrap();
    assert_eq!(reports[0].summary.archived, 2);
    assert!(archived_text(&dir).contains("ada@example.com"));

    let outcome = app.erase(&json!({"actor": "ada@example.com"})).await;
    assert_eq!(outcome["erased_entries"], 1, "{outcome}");
    assert_eq!(outcome["archive"], json!({"segments": 1, "entries": 2}));
    let text = archived_text(&dir);
    let pseudonym = outcome["pseudonym"].as_str().unwrap();
    assert!(
        !text.contains("ada@example.com") && !text.contains("\"u1\""),
        "{text}"
    );
    assert_eq!(text.matches(pseudonym).count(), 2, "{text}");
    let checked = stele_archive::verify(&dir).unwrap();
    assert!(checked.problems.is_empty(), "{checked:?}");
    let report = app.get_json("/v1/integrity/verify").await;
    assert_eq!(report["ok"], true, "{report}");
}

/// An archive that lets an erasure through (its database step and its archive step, by the API)
/// just before it writes its first batch: the batch was read before the erasure, so it holds the
/// person's data as it was.
struct ErasureInTheWay {
    inner: std::sync::Arc<dyn retention::ArchiveSink>,
    url: String,
    key: String,
    done: std::sync::atomic::AtomicBool,
}

impl retention::ArchiveSink for ErasureInTheWay {
    fn write(&self, entries: &[stele_store::RetiredEntry], now: Millis) -> Result<(), String> {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let erased = tokio::runtime::Handle::current().block_on(async {
                reqwest::Client::new()
                    .post(format!("{}/v1/erasure", self.url))
                    .bearer_auth(&self.key)
                    .json(&json!({"actor": "ada@example.com"}))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            });
            assert_eq!(
                erased["archive"],
                json!({"segments": 0, "entries": 0}),
                "{erased}"
            );
        }
        self.inner.write(entries, now)
    }

    fn erase(
        &self,
        org_id: &str,
        person: &stele_core::erase::Person,
        pseudonym: &str,
        now: Millis,
    ) -> Result<stele_archive::ArchiveErasure, String> {
        self.inner.erase(org_id, person, pseudonym, now)
    }

    fn erase_seqs(
        &self,
        org_id: &str,
        pseudonyms: &std::collections::BTreeMap<stele_core::Seq, String>,
        now: Millis,
    ) -> Result<stele_archive::ArchiveErasure, String> {
        self.inner.erase_seqs(org_id, pseudonyms, now)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_between_a_batch_read_and_its_archive_write_still_reaches_it() {
    let (_archive_dir, dir, app, now) = archived_person_app().await;
    let sink = std::sync::Arc::new(ErasureInTheWay {
        inner: stele_service::retention::archive_sink::sink(Some(&dir)).unwrap(),
        url: app.url.clone(),
        key: app.key.clone(),
        done: false.into(),
    });
    let reports = retention::prune_all(app.store.as_ref(), Some(sink), now, Trigger::Command, None)
        .await
        .unwrap();
    let summary = &reports[0].summary;
    assert_eq!((summary.archived, summary.error.clone()), (2, None));

    let text = archived_text(&dir);
    assert!(
        !text.contains("ada@example.com") && !text.contains("\"u1\""),
        "{text}"
    );
    assert_eq!(text.matches("erased-").count(), 2, "{text}");
    let checked = stele_archive::verify(&dir).unwrap();
    assert!(checked.problems.is_empty(), "{checked:?}");
}
