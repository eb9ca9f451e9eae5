//! The independent verifier (`tools/independent_verify.py`: Python standard library only, written
//! from docs/integrity.md, sharing no code with Stele) accepts real proofs made by a real server
//! and rejects tampered copies. If it and the server ever disagree, either the code or the
//! documented encoding is wrong.
//!
//! python3 must be installed (CI installs it); without it this test fails rather than skips.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{key_in, serve_sqlite};

const STELE: &str = env!("CARGO_BIN_EXE_stele");
const VERIFIER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tools/independent_verify.py"
);

async fn post(url: &str, key: &str, path: &str, body: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// The body exactly as the server sent it (so the verifier sees the server's bytes).
async fn get_text(url: &str, key: &str, path: &str) -> String {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    text
}

/// Events that exercise the canonical encoding: every context field, nested change values,
/// floats in both notations, integers at the u64 and i64 limits, -0.0, control characters,
/// non-ASCII keys that sort by their UTF-8 bytes, an offset timestamp with microseconds, an
/// integer entity id, a redacted value, an empty description, an entity without id.
const FIRST_BATCH: &str = r#"{"events": [
  {"occurred_at": "2026-01-02T04:04:05.678901+02:00",
   "action": "update", "detailed_action": "printer.rename", "channel": "hardware",
   "description": "Renamed \"Alpha\" → Ålpha\n\ttab \\ 😀",
   "outcome": "failure",
   "actor": {"type": "USER", "id": "u1", "name": "Zoë O'Brien", "email": "zoe@example.com"},
   "entity": {"type": "Printer", "id": 42, "name": "Älpha"},
   "entity_ids": ["42", 43, "x/y"],
   "context": {"ip": "2001:DB8::1", "user_agent": "Mozilla/5.0 (X11)", "correlation_id": "req-ü1",
               "request_id": "r-1", "reason": "ticket #7", "source": "web", "api_key_id": "key_x",
               "impersonator": {"id": "admin-1", "email": "root@example.com"},
               "location": "Zürich, CH"},
   "changes": [{"field": "name", "old": "Alpha", "new": "Ålpha"},
               {"field": "tags", "old": null, "new": ["a", {"z": 1, "a": [true, null]}]},
               {"field": "price", "old": 1.5, "new": 2},
               {"field": "nickname", "new": "x"},
               {"field": "removed", "old": {"b": 1e21, "a": -0.0}}],
   "metadata": {"site": "Zürich", "toner": 0.25, "big": 1e21, "tiny": 1.5e-7, "neg": -12.5,
                "count": 18446744073709551615, "min": -9223372036854775808, "ok": true,
                "none": null, "Z": "upper", "é": "accent", "_": "underscore",
                "ctl": "a\u0001b\u001f\"\\/", "line_sep": "\u2028", "api_token": "s3cret",
                "emoji": "😀", "whole": 100.0, "exp_int": 1e2, "small": 0.00001}},
  {"action": "update", "description": "Bob moved",
   "actor": {"type": "user", "id": "u2", "name": "Bob", "email": "bob@example.com"},
   "context": {"ip": "10.0.0.2", "user_agent": "curl/8"},
   "before": {"address": {"city": "Berlin", "zip": "10115"}, "password": "old"},
   "after": {"address": {"city": "Köln", "zip": "10115"}, "password": "new"}},
  {"action": "login", "actor": {"type": "api", "href": "https://app.test/keys/1",
                                 "metadata": {"role": "ci", "seats": 3, "sso": true}}},
  {"action": "sync", "description": "",
   "entity": {"type": "Job", "href": "https://app.test/j", "metadata": {"é": "x"}},
   "related_entities": [{"type": "Workspace", "id": "w1", "name": "Wörk"},
                        {"type": "Plan", "metadata": {"tier": "pro", "none": null}}],
   "actor": {"type": "scheduler", "name": "nightly"}}
]}"#;

const SECOND_BATCH: &str = r#"{"events": [
  {"action": "delete", "actor": {"type": "user", "id": "u2", "email": "bob@example.com"},
   "entity": {"type": "Printer", "id": "7"}, "context": {"ip": "10.0.0.2"}},
  {"action": "view", "actor": {"type": "webhook", "id": "hook-1"}, "metadata": {"n": -3}}
]}"#;

/// Runs the Python verifier on a document; returns (exit code, stdout).
fn independent(dir: &Path, name: &str, document: &str, args: &[&str]) -> (i32, String) {
    let file = dir.join(name);
    std::fs::write(&file, document).unwrap();
    let out = Command::new("python3")
        .arg(VERIFIER)
        .arg(&file)
        .args(args)
        .output()
        .expect("python3 must be installed to run tools/independent_verify.py (CI installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().expect("python3 was killed by a signal");
    assert!(
        code == 0 || code == 1,
        "the verifier failed to run (exit {code}): {stdout}\n{stderr}"
    );
    (code, stdout)
}

fn stele_proof_verify(dir: &Path, document: &str, public_key: &str) -> (bool, String) {
    let file = dir.join("for-stele.json");
    std::fs::write(&file, document).unwrap();
    let out = Command::new(STELE)
        .args(["proof", "verify"])
        .arg(&file)
        .args(["--public-key", public_key])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The same hex string with its first digit changed.
fn flip(hex: &str) -> String {
    let first = if hex.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &hex[1..])
}

fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or("")
}

struct Recorded {
    /// Inclusion proofs by seq, as the server sent them.
    proofs: BTreeMap<i64, String>,
    consistency: String,
    public_key: String,
    _dir: tempfile::TempDir,
}

/// Three runs of a real server: the first batch, a stop (checkpoint at 4); the second batch and
/// an erasure of u2, a stop (checkpoint at 7); then every entry's proof and a consistency proof.
fn record() -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut server = serve_sqlite(dir.path(), &[]);
    let key = key_in(&server.banner).expect("a first start prints the admin key");
    rt.block_on(post(&server.url, &key, "/v1/events", FIRST_BATCH));
    // A graceful stop signs the final checkpoint.
    server.stop();

    let mut server = serve_sqlite(dir.path(), &[]);
    let url = server.url.clone();
    rt.block_on(async {
        post(&url, &key, "/v1/events", SECOND_BATCH).await;
        let erased = post(
            &url,
            &key,
            "/v1/erasure",
            r#"{"actor": "u2", "reason": "GDPR request 7"}"#,
        )
        .await;
        assert_eq!(erased["erased_entries"], 2, "{erased}");
        assert_eq!(erased["record"]["seq"], 7, "{erased}");
    });
    server.stop();

    let mut server = serve_sqlite(dir.path(), &[]);
    let url = server.url.clone();
    let recorded = rt.block_on(async {
        let page: Value = serde_json::from_str(
            &get_text(&url, &key, "/v1/events?actor_type=all&limit=100").await,
        )
        .unwrap();
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 7, "{page}");
        let mut proofs = BTreeMap::new();
        for entry in entries {
            let id = entry["id"].as_str().unwrap();
            let proof = get_text(&url, &key, &format!("/v1/events/{id}/proof")).await;
            proofs.insert(entry["seq"].as_i64().unwrap(), proof);
        }
        let consistency = get_text(&url, &key, "/v1/integrity/consistency?from=4&to=7").await;
        let public: Value =
            serde_json::from_str(&get_text(&url, &key, "/v1/integrity/public-key").await).unwrap();
        (
            proofs,
            consistency,
            public["public_key"].as_str().unwrap().to_string(),
        )
    });
    server.stop();
    Recorded {
        proofs: recorded.0,
        consistency: recorded.1,
        public_key: recorded.2,
        _dir: dir,
    }
}

#[test]
fn the_python_verifier_agrees_with_the_server() {
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .expect("python3 must be installed to run tools/independent_verify.py (CI installs it)");
    assert!(python.status.success());
    let (code, said) = {
        let out = Command::new("python3")
            .args([VERIFIER, "--self-test"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{said}");

    let rec = record();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let key_arg = ["--public-key", rec.public_key.as_str()];

    // Every entry's proof verifies, with the signature checked by the verifier itself, and
    // `stele proof verify` agrees.
    for (seq, proof) in &rec.proofs {
        let (code, said) = independent(dir, "proof.json", proof, &key_arg);
        assert_eq!(code, 0, "seq {seq}:\n{said}\n{proof}");
        assert!(
            last_line(&said).starts_with(&format!(
                "OK: entry seq {seq} is included in the checkpoint at seq 7 of org_"
            )) && said.contains("checkpoint signatures verified"),
            "seq {seq}: {said}"
        );
        let (ok, stele_said) = stele_proof_verify(dir, proof, &rec.public_key);
        assert!(ok, "seq {seq}: stele proof verify: {stele_said}");
    }

    // Without a public key the content and path are checked, and the output says the
    // signature was not.
    let (code, said) = independent(dir, "proof.json", &rec.proofs[&1], &[]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("signature was NOT checked"), "{said}");

    // The values the verifier committed to for the first entry (format 2: one leaf each, JSON
    // values in canonical form), as docs/integrity.md says.
    let (_, said) = independent(dir, "proof.json", &rec.proofs[&1], &key_arg);
    for expected in [
        r#"leaf entity_ids.2 = "x/y""#,
        r#"canonical context: {"api_key_id":"key_x","correlation_id":"req-ü1","request_id":"r-1","source":"web"}"#,
        r#"leaf context.impersonator.email = "root@example.com""#,
        r#"leaf context.location = "Zürich, CH""#,
        r#".old = {"a":-0.0,"b":1e+21}"#,
        r#".new = ["a",{"a":[true,null],"z":1}]"#,
        r#".old = null"#,
        r#".old = 1.5"#,
        r#"leaf metadata.api_token = "[REDACTED]""#,
        r#"leaf metadata.big = 1e+21"#,
        r#"leaf metadata.count = 18446744073709551615"#,
        r#"leaf metadata.ctl = "a\u0001b\u001f\"\\/""#,
        r#"leaf metadata.emoji = "😀""#,
        r#"leaf metadata.exp_int = 100.0"#,
        r#"leaf metadata.line_sep = "LS""#,
        r#"leaf metadata.min = -9223372036854775808"#,
        r#"leaf metadata.small = 0.00001"#,
        r#"leaf metadata.tiny = 1.5e-7"#,
        r#"leaf metadata.é = "accent""#,
    ] {
        // U+2028 is written as itself, not escaped.
        let expected = expected.replace("LS", "\u{2028}");
        assert!(said.contains(&expected), "missing {expected}\n in {said}");
    }
    // The fields added to the model later are values like any other.
    let (_, said) = independent(dir, "proof.json", &rec.proofs[&3], &key_arg);
    for expected in [
        r#"leaf actor.href = "https://app.test/keys/1""#,
        r#"leaf actor.metadata.seats = 3"#,
    ] {
        assert!(said.contains(expected), "missing {expected}\n in {said}");
    }
    let (_, said) = independent(dir, "proof.json", &rec.proofs[&4], &key_arg);
    for expected in [
        r#"leaf entity.metadata.é = "x""#,
        r#"leaf related_entities.0.name = "Wörk""#,
        r#"leaf related_entities.1.metadata.none = null"#,
        r#"canonical related entity types: ["Workspace","Plan"]"#,
    ] {
        assert!(said.contains(expected), "missing {expected}\n in {said}");
    }
    // An erased entry: what the erasure removed is reported as not proven, the rest is.
    let (code, said) = independent(dir, "proof.json", &rec.proofs[&2], &key_arg);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("NOT proven: actor.id (erased or redacted"),
        "{said}"
    );
    let first: Value = serde_json::from_str(&rec.proofs[&1]).unwrap();
    assert_eq!(first["entry"]["occurred_at"], "2026-01-02T02:04:05.678Z");
    assert_eq!(first["entry"]["actor"]["type"], "user");

    // Erased entries still verify; the erasure entry names only the pseudonym.
    for seq in [2, 5] {
        let proof: Value = serde_json::from_str(&rec.proofs[&seq]).unwrap();
        let actor = &proof["entry"]["actor"];
        assert!(
            actor["id"].as_str().unwrap().starts_with("erased-") && actor.get("email").is_none(),
            "{proof}"
        );
        assert!(proof["entry"]["context"].get("ip").is_none(), "{proof}");
    }
    let erasure: Value = serde_json::from_str(&rec.proofs[&7]).unwrap();
    assert_eq!(erasure["entry"]["channel"], "compliance");
    assert_eq!(erasure["entry"]["detailed_action"], "stele.erasure");
    assert!(!rec.proofs[&7].contains("u2") && !rec.proofs[&7].contains("bob@"));

    // The consistency proof between the two checkpoints.
    let (code, said) = independent(dir, "consistency.json", &rec.consistency, &key_arg);
    assert_eq!(code, 0, "{said}");
    assert!(
        last_line(&said).starts_with("OK: the checkpoint at seq 7 extends the one at seq 4"),
        "{said}"
    );

    // Tampered copies are rejected.
    let proof: Value = serde_json::from_str(&rec.proofs[&1]).unwrap();
    type Tamper = Box<dyn Fn(&mut Value)>;
    let tampering: Vec<(&str, Tamper)> = vec![
        (
            "metadata value",
            Box::new(|p| p["entry"]["metadata"]["toner"] = json!(0.26)),
        ),
        (
            "description",
            Box::new(|p| p["entry"]["description"] = json!("Renamed")),
        ),
        (
            "a change",
            Box::new(|p| p["entry"]["changes"][0]["new"] = json!("Beta")),
        ),
        (
            "a removed change value",
            Box::new(|p| {
                p["entry"]["changes"][3]
                    .as_object_mut()
                    .unwrap()
                    .remove("new");
            }),
        ),
        (
            "an entity id",
            Box::new(|p| p["entry"]["entity_ids"][1] = json!("44")),
        ),
        (
            "the impersonator",
            Box::new(|p| p["entry"]["context"]["impersonator"]["id"] = json!("nobody")),
        ),
        (
            "recorded_at",
            Box::new(|p| {
                let t = p["entry"]["recorded_at"].as_str().unwrap().to_string();
                let last = if t.ends_with("1Z") { "2Z" } else { "1Z" };
                p["entry"]["recorded_at"] = json!(format!("{}{last}", &t[..t.len() - 2]));
            }),
        ),
        (
            "outcome",
            Box::new(|p| p["entry"]["outcome"] = json!("success")),
        ),
        (
            "actor type",
            Box::new(|p| p["entry"]["actor"]["type"] = json!("api")),
        ),
        (
            "an added context field",
            Box::new(|p| p["entry"]["context"]["note"] = json!("not covered")),
        ),
        (
            "the personal digest",
            Box::new(|p| {
                p["personal_digest"] = json!(flip(p["personal_digest"].as_str().unwrap()))
            }),
        ),
        (
            "prev_hash",
            Box::new(|p| p["prev_hash"] = json!(flip(p["prev_hash"].as_str().unwrap()))),
        ),
        (
            "a path hash",
            Box::new(|p| p["path"][0] = json!(flip(p["path"][0].as_str().unwrap()))),
        ),
        ("leaf_index", Box::new(|p| p["leaf_index"] = json!(1))),
        (
            "the Merkle root",
            Box::new(|p| {
                let root = p["checkpoint"]["merkle_root"].as_str().unwrap().to_string();
                p["checkpoint"]["merkle_root"] = json!(flip(&root));
            }),
        ),
        (
            "the checkpoint time",
            Box::new(|p| p["checkpoint"]["created_at"] = json!("2030-01-01T00:00:00.000Z")),
        ),
        (
            "the signature",
            Box::new(|p| {
                let sig = p["checkpoint"]["signature"].as_str().unwrap().to_string();
                p["checkpoint"]["signature"] = json!(flip(&sig));
            }),
        ),
    ];
    for (what, tamper) in tampering {
        let mut forged = proof.clone();
        tamper(&mut forged);
        let (code, said) = independent(dir, "forged.json", &forged.to_string(), &key_arg);
        assert_eq!(code, 1, "tampering with {what} must be detected:\n{said}");
        assert!(last_line(&said).starts_with("INVALID: "), "{what}: {said}");
    }

    // The fields added to the model later are as tamper-evident as the others, and an entry
    // that did not use them cannot be given one.
    let widened: Value = serde_json::from_str(&rec.proofs[&4]).unwrap();
    let tampering: Vec<(&str, &Value, Tamper)> = vec![
        (
            "a related entity's name",
            &widened,
            Box::new(|p| p["entry"]["related_entities"][0]["name"] = json!("Work")),
        ),
        (
            "a removed related entity",
            &widened,
            Box::new(|p| {
                p["entry"]["related_entities"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "the entity's link",
            &widened,
            Box::new(|p| p["entry"]["entity"]["href"] = json!("https://evil.test/j")),
        ),
        (
            "an added actor link",
            &proof,
            Box::new(|p| p["entry"]["actor"]["href"] = json!("https://evil.test/u")),
        ),
        (
            "an added origin",
            &proof,
            Box::new(|p| p["entry"]["origin"] = json!({"protocol": "workos"})),
        ),
    ];
    for (what, original, tamper) in tampering {
        let mut forged = original.clone();
        tamper(&mut forged);
        let (code, said) = independent(dir, "forged.json", &forged.to_string(), &key_arg);
        assert_eq!(code, 1, "tampering with {what} must be detected:\n{said}");
    }

    // Another public key (RFC 8032's first test key) is refused.
    let (code, said) = independent(
        dir,
        "proof.json",
        &rec.proofs[&1],
        &[
            "--public-key",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        ],
    );
    assert_eq!(code, 1, "{said}");

    // The same numbers written differently are the same canonical JSON: still valid.
    let respelled = rec.proofs[&1]
        .replace("\"toner\":0.25", "\"toner\":2.5e-1")
        .replace("\"whole\":100.0", "\"whole\":1E2");
    assert_ne!(respelled, rec.proofs[&1]);
    let (code, said) = independent(dir, "proof.json", &respelled, &key_arg);
    assert_eq!(code, 0, "{said}");

    // Every value is covered by its own salted commitment; the proof carries the entry's seal,
    // so a changed IP is caught too.
    let mut other_ip = proof.clone();
    other_ip["entry"]["context"]["ip"] = json!("192.0.2.99");
    let (code, said) = independent(dir, "proof.json", &other_ip.to_string(), &key_arg);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("fields digest"), "{said}");

    // A tampered consistency proof.
    let consistency: Value = serde_json::from_str(&rec.consistency).unwrap();
    let mut forged = consistency.clone();
    forged["path"][0] = json!(flip(forged["path"][0].as_str().unwrap()));
    let (code, said) = independent(dir, "consistency.json", &forged.to_string(), &key_arg);
    assert_eq!(code, 1, "{said}");
    let mut forged = consistency.clone();
    let root = forged["to"]["merkle_root"].as_str().unwrap().to_string();
    forged["to"]["merkle_root"] = json!(flip(&root));
    let (code, said) = independent(dir, "consistency.json", &forged.to_string(), &[]);
    assert_eq!(code, 1, "{said}");
}
