//! Stele against the real client libraries of the services it stands in for (issue 16), installed
//! from npm into this directory (`npm ci --prefix crates/server/tests/interop`, which `.ci/run`
//! does). Without them these tests fail, never skip.
//!
//! - [`workos`]: `@workos-inc/node` 8.13 against a running server.
//! - [`retraced`]: `@retracedhq/retraced`'s publisher client against a running server.
//! - [`streams`]: log streams' webhook signatures checked by `standardwebhooks`, and syslog
//!   received by a real `rsyslogd`.
//! - Here: the Retraced receipt hash against the library's own function.

mod retraced;
mod running;
mod streams;
mod workos;

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};
use stele_server::compat::retraced::hash::receipt_hash;

/// This directory, where `node_modules` is.
fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Runs a script of this directory with Node and returns its standard output.
fn node(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let dir = here();
    for package in [
        "@retracedhq/retraced",
        "@workos-inc/node",
        "standardwebhooks",
    ] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "the client libraries are not installed: run `npm ci --prefix {}`",
            dir.display()
        );
    }
    let output = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("running node (Node 20 or later must be installed)");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Text with what the hash escapes (`%`, `:`, `=`, `;`), spaces, non-ASCII letters and
/// characters on both sides of the UTF-16 surrogate range (where JavaScript's key order and
/// Rust's differ).
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('%'),
            Just(':'),
            Just('='),
            Just(';'),
            Just(' '),
            Just('é'),
            Just('\u{FF5E}'),
            Just('\u{1F600}'),
            proptest::char::range('0', 'z'),
        ],
        0..8,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A non-empty id (the library refuses an empty one where it is required).
fn id() -> impl Strategy<Value = String> {
    text().prop_map(|t| format!("x{t}"))
}

/// A string map as Retraced takes one, or `{}`, `null`, or absent (`None`).
fn map() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        proptest::collection::btree_map(text(), text(), 0..5).prop_map(|m| Some(json!(m))),
    ]
}

/// An object with an `id` (and sometimes a name), `{}`, or absent.
fn part() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        (id(), text()).prop_map(|(id, name)| Some(json!({"id": id, "name": name}))),
    ]
}

/// A flag as clients send it: a boolean, absent, or (loosely typed clients) a string or number.
fn flag() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!(true))),
        Just(Some(json!(false))),
        Just(Some(json!("false"))),
        Just(Some(json!(0))),
        Just(Some(json!(1))),
    ]
}

fn event() -> impl Strategy<Value = Map<String, Value>> {
    (
        id(),
        (part(), part(), part()),
        proptest::option::of(text()),
        (flag(), flag()),
        (map(), map()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(
                action,
                (target, actor, group),
                ip,
                (failure, anonymous),
                (fields, metadata),
                ext,
            )| {
                let mut event = Map::new();
                event.insert("action".into(), json!(action));
                event.insert("crud".into(), json!("c"));
                let optional = [
                    ("target", target),
                    ("actor", actor),
                    ("group", group),
                    ("source_ip", ip.map(Value::String)),
                    ("is_failure", failure),
                    ("is_anonymous", anonymous),
                    ("fields", fields),
                    ("metadata", metadata),
                    ("external_id", ext.map(Value::String)),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        event.insert(name.into(), value);
                    }
                }
                event
            },
        )
}

/// Stele's receipt hash equals the library's own (`computeHash`, which the library checks every
/// receipt with) on a thousand generated events.
#[test]
fn retraced_receipt_hashes_match_the_client_librarys_own() {
    let mut runner = TestRunner::deterministic();
    let cases: Vec<(String, Map<String, Value>)> = (0..1000)
        .map(|_| {
            let id = id().new_tree(&mut runner).unwrap().current();
            let event = event().new_tree(&mut runner).unwrap().current();
            (id, event)
        })
        .collect();
    let input = tempfile::NamedTempFile::new().unwrap();
    let json: Vec<Value> = cases
        .iter()
        .map(|(id, event)| json!({"id": id, "event": event}))
        .collect();
    std::fs::write(input.path(), serde_json::to_vec(&json).unwrap()).unwrap();
    let theirs: Vec<String> =
        serde_json::from_str(&node("retraced_hash.js", &[input.path().as_os_str()])).unwrap();
    assert_eq!(theirs.len(), cases.len());
    for ((id, event), theirs) in cases.iter().zip(theirs) {
        assert_eq!(
            receipt_hash(id, event),
            theirs,
            "id {id:?}, event {}",
            Value::Object(event.clone())
        );
    }
}
