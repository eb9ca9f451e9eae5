//! What the client's tests read back from the real `stele serve` (which `crate::support`
//! starts): every entry, the markers the tests put in them, and a poll with a deadline.

use std::time::{Duration, Instant};

use serde_json::Value;

/// Every entry the key may read (of the organization `Stele-Organization` names, if given),
/// walking every page of `GET /v1/events` (all actor types).
pub async fn list_all(url: &str, key: &str, organization: Option<&str>) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("{url}/v1/events"))
            .bearer_auth(key)
            .query(&[("actor_type", "all"), ("limit", "500")]);
        if let Some(org) = organization {
            request = request.header("stele-organization", org);
        }
        if let Some(c) = &cursor {
            request = request.query(&[("cursor", c.as_str())]);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "listing the events");
        let page: Value = response.json().await.unwrap();
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return entries,
        }
    }
}

/// The `metadata.n` of the entries whose `metadata.run` is `run`, sorted (duplicates kept, so
/// that a duplicate shows).
pub fn markers(entries: &[Value], run: &str) -> Vec<u64> {
    let mut ns: Vec<u64> = entries
        .iter()
        .filter(|e| e["metadata"]["run"] == run)
        .map(|e| e["metadata"]["n"].as_u64().expect("a marker"))
        .collect();
    ns.sort_unstable();
    ns
}

/// Polls `f` every 20 ms until it is true, or panics with `what` after `deadline`.
pub async fn until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
