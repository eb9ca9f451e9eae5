//! Conformance of search and paging: description search, and a model-based check of random
//! filters and walks in both directions (with `list` and with `list_rows`) against
//! `EventFilter::matches` over random events.

use std::sync::Arc;

use stele_core::filter::{Cursor, CursorDirection, DetailedActionMatch, EventFilter};
use stele_core::params::PageRequest;
use stele_core::{ActorType, Entity, Entry, NewEvent, Outcome, Seq};

use super::{Rng, T0, all, assert_flat_matches_entry, event, everyone, org, request};
use crate::{OrgKey, Store};

pub async fn description_search_is_case_insensitive_and_unicode_aware(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let texts = [
        "Printer ALPHA renamed",
        "alpha beta",
        "Größe geändert",
        "ab",
        "nothing",
    ];
    let events = texts
        .iter()
        .enumerate()
        .map(|(i, t)| NewEvent {
            description: Some(t.to_string()),
            ..event("update", T0 + i as i64)
        })
        .collect();
    store.append(a, request(events)).await.unwrap();
    let find = |q: &str| {
        let store = store.clone();
        let q = q.to_string();
        async move {
            let hits = all(
                &store,
                a,
                EventFilter {
                    q: Some(q),
                    ..everyone()
                },
            )
            .await;
            let mut d: Vec<String> = hits
                .into_iter()
                .filter_map(|e| e.event.description)
                .collect();
            d.sort();
            d
        }
    };
    assert_eq!(
        find("Alpha").await,
        vec!["Printer ALPHA renamed", "alpha beta"]
    );
    assert_eq!(find("GRÖSSE").await, Vec::<String>::new());
    assert_eq!(find("GRÖßE").await, vec!["Größe geändert"]);
    assert_eq!(find("b").await, vec!["ab", "alpha beta"]);
    assert_eq!(find("a r").await, vec!["Printer ALPHA renamed"]);
    assert_eq!(find("zzz").await, Vec::<String>::new());
}

const ACTIONS: &[&str] = &[
    "create",
    "update",
    "delete",
    "bulk_delete",
    "login",
    "export",
];
const DETAILED: &[&str] = &[
    "printJob.retry",
    "printJob.cancel",
    "printer.rename",
    "license_reset",
];
const CHANNELS: &[&str] = &["default", "auth", "security", "pii-read"];
const ENTITY_TYPES: &[&str] = &["Printer", "PrintJob", "License"];
const IDS: &[&str] = &["1", "2", "3", "4", "5", "6"];
const PEOPLE: &[(&str, &str)] = &[
    ("u1", "ada@example.com"),
    ("u2", "bob@example.com"),
    ("u3", "cy@example.com"),
];
const WORDS: &[&str] = &[
    "Printer", "renamed", "job", "RETRIED", "license", "ÄRGER", "reset",
];

fn random_event(rng: &mut Rng, i: i64) -> NewEvent {
    let action = *rng.pick(ACTIONS);
    let mut e = event(action, T0 + (rng.next() % 500) as i64 * 1000 + i % 3);
    if rng.chance(70) {
        e.detailed_action = Some(rng.pick(DETAILED).to_string());
    }
    e.channel = rng.pick(CHANNELS).to_string();
    e.actor.kind = *rng.pick(&ActorType::ALL);
    let (id, email) = rng.pick(PEOPLE);
    e.actor.id = rng.chance(80).then(|| id.to_string());
    e.actor.email = rng.chance(60).then(|| email.to_string());
    if rng.chance(85) {
        e.entity = Some(Entity::new(
            rng.pick(ENTITY_TYPES).to_string(),
            rng.chance(90).then(|| rng.pick(IDS).to_string()),
            None,
        ));
    }
    if e.action.starts_with("bulk") {
        e.entity_ids = (0..3).map(|_| rng.pick(IDS).to_string()).collect();
        e.entity_ids.dedup();
    }
    // Related entities (a WorkOS event's further targets): the entity filters match them too.
    if rng.chance(20) {
        e.related_entities = (0..1 + rng.next() % 2)
            .map(|_| Entity {
                href: rng.chance(50).then(|| "https://app.test/x".to_string()),
                ..Entity::new(
                    rng.pick(ENTITY_TYPES).to_string(),
                    rng.chance(80).then(|| rng.pick(IDS).to_string()),
                    None,
                )
            })
            .collect();
        e.origin
            .insert("protocol".into(), serde_json::Value::from("workos"));
        e.actor
            .metadata
            .insert("role".into(), serde_json::Value::from("admin"));
    }
    if rng.chance(10) {
        e.outcome = Outcome::Failure;
    }
    if rng.chance(50) {
        e.context.correlation_id = Some(format!("c{}", rng.next() % 20));
    }
    if rng.chance(70) {
        e.context.ip = Some(format!("10.0.0.{}", rng.next() % 4));
    }
    if rng.chance(90) {
        e.description = Some(format!("{} {} #{i}", rng.pick(WORDS), rng.pick(WORDS)));
    }
    e
}

/// A time range (`from`, `to` or both), with some actor types now and then.
fn random_time_range(rng: &mut Rng) -> EventFilter {
    let mut f = EventFilter::default();
    if rng.chance(70) {
        f.from = Some(T0 + (rng.next() % 500) as i64 * 1000);
    }
    if f.from.is_none() || rng.chance(60) {
        f.to = Some(f.from.unwrap_or(T0) + (rng.next() % 300) as i64 * 1000 + 1);
    }
    if rng.chance(30) {
        f.actor_types = vec![*rng.pick(&ActorType::ALL)];
    }
    f
}

fn random_filter(rng: &mut Rng) -> EventFilter {
    let mut f = EventFilter::default();
    let mut set = 0;
    while set == 0 || rng.chance(35) {
        set += 1;
        match rng.next() % 13 {
            0 => f.action = Some(rng.pick(ACTIONS).to_string()),
            1 => {
                f.detailed_action = Some(if rng.chance(50) {
                    DetailedActionMatch::Exact(rng.pick(DETAILED).to_string())
                } else {
                    DetailedActionMatch::Prefix(
                        rng.pick(&["printJob.", "print", "lic"]).to_string(),
                    )
                })
            }
            2 => {
                f.actor_types = ActorType::ALL
                    .into_iter()
                    .filter(|_| rng.chance(50))
                    .collect();
                if f.actor_types.is_empty() {
                    f.actor_types = ActorType::ALL.to_vec();
                }
            }
            3 => {
                let (id, email) = rng.pick(PEOPLE);
                f.actor = Some(if rng.chance(50) { id } else { email }.to_string());
            }
            4 => f.entity_type = Some(rng.pick(ENTITY_TYPES).to_string()),
            5 => f.entity_id = Some(rng.pick(IDS).to_string()),
            6 => f.channel = Some(rng.pick(CHANNELS).to_string()),
            7 => {
                f.outcome = Some(if rng.chance(50) {
                    Outcome::Failure
                } else {
                    Outcome::Success
                })
            }
            8 => f.correlation_id = Some(format!("c{}", rng.next() % 20)),
            9 => f.ip = Some(format!("10.0.0.{}", rng.next() % 4)),
            10 => f.from = Some(T0 + (rng.next() % 500) as i64 * 1000),
            11 => f.to = Some(T0 + (rng.next() % 500) as i64 * 1000 + 1),
            _ => {
                f.q = Some(
                    rng.pick(&["print", "RENAMED", "ärger", "#1", "e", "job r"])
                        .to_string(),
                )
            }
        }
    }
    if let (Some(a), Some(b)) = (f.from, f.to)
        && a >= b
    {
        f.to = None;
    }
    f
}

/// Walks every page towards older entries, then back towards newer ones from the last page.
async fn walk_both_ways(
    store: &Arc<dyn Store>,
    org: OrgKey,
    filter: &EventFilter,
    limit: usize,
) -> (Vec<Seq>, Vec<Seq>) {
    let mut older = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .list(
                org,
                &PageRequest {
                    filter: filter.clone(),
                    limit,
                    cursor,
                },
            )
            .await
            .unwrap();
        assert!(page.entries.len() <= limit);
        older.extend(page.entries.iter().map(|e| e.seq));
        pages.push(page.clone());
        match page.next_cursor {
            Some(c) => {
                assert_eq!(c.direction, CursorDirection::Older);
                cursor = Some(c);
            }
            None => break,
        }
    }
    // Back from the last page: its own entries, then every newer page.
    let last = pages.last().unwrap();
    let mut newer: Vec<Seq> = last.entries.iter().map(|e| e.seq).rev().collect();
    let mut cursor = last.prev_cursor;
    while let Some(c) = cursor {
        let page = store
            .list(
                org,
                &PageRequest {
                    filter: filter.clone(),
                    limit,
                    cursor: Some(c),
                },
            )
            .await
            .unwrap();
        newer.extend(page.entries.iter().rev().map(|e| e.seq));
        cursor = page.prev_cursor;
    }
    newer.reverse();
    (older, newer)
}

/// Walks an organization with `list_rows` (the export's walk), following its cursor, and checks
/// every page against `list`'s, and a page walked newer from a cursor too. A backend may walk
/// rows differently when the organization is alone in the database (SQLite reads `entries` in
/// `pk` order then), so the walks are checked alone and again once another organization has
/// entries.
pub async fn row_walks_match_list_walks_alone_and_among_organizations(store: Arc<dyn Store>) {
    let a = org(&store, "alone").await;
    let mut rng = Rng(0x0a10_4e55_u64);
    let events: Vec<NewEvent> = (0..400).map(|i| random_event(&mut rng, i)).collect();
    for chunk in events.chunks(100) {
        store.append(a, request(chunk.to_vec())).await.unwrap();
    }
    let filters = [
        ("default", EventFilter::default()),
        ("everyone", everyone()),
        (
            "system only",
            EventFilter {
                actor_types: vec![ActorType::System],
                ..EventFilter::default()
            },
        ),
        (
            "a time range",
            EventFilter {
                from: Some(T0 + 100_000),
                to: Some(T0 + 300_000),
                ..everyone()
            },
        ),
        (
            "an action",
            EventFilter {
                action: Some(ACTIONS[0].to_string()),
                ..everyone()
            },
        ),
    ];
    for round in ["alone", "among organizations"] {
        if round != "alone" {
            let other = org(&store, "other").await;
            store
                .append(other, request(vec![event("x", T0)]))
                .await
                .unwrap();
        }
        for (name, filter) in &filters {
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let request = PageRequest {
                    filter: filter.clone(),
                    limit: 37,
                    cursor,
                };
                let listed = store.list(a, &request).await.unwrap();
                let rows = store.list_rows(a, &request).await.unwrap();
                let entries: Vec<Entry> = rows.iter().map(|r| r.entry().unwrap()).collect();
                assert_eq!(entries, listed.entries, "{round}, {name}, page {pages}");
                assert_eq!(rows.next_cursor, listed.next_cursor, "{round}, {name}");
                if let Some(back) = listed.prev_cursor {
                    let newer = PageRequest {
                        cursor: Some(back),
                        ..request.clone()
                    };
                    let listed = store.list(a, &newer).await.unwrap();
                    let rows = store.list_rows(a, &newer).await.unwrap();
                    let entries: Vec<Entry> = rows.iter().map(|r| r.entry().unwrap()).collect();
                    assert_eq!(entries, listed.entries, "{round}, {name}, newer");
                }
                pages += 1;
                match rows.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert!(
                pages > 1 || *name == "system only" || *name == "an action",
                "{name}"
            );
        }
    }
}

pub async fn model_every_filter_and_walk_matches_brute_force(store: Arc<dyn Store>) {
    let a = org(&store, "model").await;
    let mut rng = Rng(0x5eed_1e55_u64);
    let events: Vec<NewEvent> = (0..3000).map(|i| random_event(&mut rng, i)).collect();
    // First alone in the database (where a backend may walk a time range in its table of entries
    // itself, as SQLite does), then among another organization's entries.
    for chunk in events.chunks(250) {
        store.append(a, request(chunk.to_vec())).await.unwrap();
    }
    let stored = all(&store, a, everyone()).await;
    assert_eq!(stored.len(), events.len());
    // The model: every stored entry, in the documented order.
    let mut model = stored.clone();
    model.sort_by_key(|e| std::cmp::Reverse((e.event.occurred_at, e.seq)));
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        model.iter().map(|e| e.seq).collect::<Vec<_>>(),
        "newest first by occurred_at, then seq"
    );
    check_against_model(&store, a, &model, &mut rng, 0..60).await;
    let noise = org(&store, "noise").await;
    for chunk in events.chunks(250) {
        store
            .append(noise, request(chunk[..10].to_vec()))
            .await
            .unwrap();
    }
    check_against_model(&store, a, &model, &mut rng, 60..150).await;
}

/// Random filters' pages, walks and counts against the `model` (every entry of `a`, newest
/// first); every third round a time range that nothing else narrows but, at times, actor types.
async fn check_against_model(
    store: &Arc<dyn Store>,
    a: OrgKey,
    model: &[Entry],
    rng: &mut Rng,
    rounds: std::ops::Range<usize>,
) {
    for round in rounds {
        let filter = if round % 3 == 0 {
            random_time_range(rng)
        } else {
            random_filter(rng)
        };
        let expected: Vec<Seq> = model
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.seq)
            .collect();
        let (counted, exact) = store.count(a, &filter).await.unwrap();
        if exact {
            assert_eq!(counted as usize, expected.len(), "round {round}: count");
        } else {
            assert!(counted as usize <= expected.len(), "round {round}: count");
        }
        let limit = *rng.pick(&[1usize, 7, 50, 500]);
        let first_page = PageRequest {
            filter: filter.clone(),
            limit,
            cursor: None,
        };
        let first = store.list(a, &first_page).await.unwrap();
        // Exact when counting was cheap; otherwise an honest lower bound (a loaded machine may
        // hit the time budget even on small data).
        if first.total_exact {
            assert_eq!(
                first.total as usize,
                expected.len(),
                "round {round}: total for {filter:?}"
            );
        } else {
            assert!(
                first.total as usize <= expected.len(),
                "round {round}: lower bound for {filter:?}"
            );
        }
        assert!(first.prev_cursor.is_none());
        // As stored rows, uncounted: the same entries and cursor, and flat cells that say what
        // the entries say.
        let rows = store.list_rows(a, &first_page).await.unwrap();
        let entries: Vec<Entry> = rows.iter().map(|r| r.entry().unwrap()).collect();
        assert_eq!(entries, first.entries, "round {round}: rows");
        assert_eq!(rows.next_cursor, first.next_cursor, "round {round}: rows");
        for (row, entry) in rows.iter().zip(&entries) {
            assert_flat_matches_entry(entry, &row.flat().unwrap());
        }
        if limit >= 50 || round % 5 == 0 {
            let (older, newer) = walk_both_ways(store, a, &filter, limit).await;
            assert_eq!(
                older, expected,
                "round {round}: walking older with {filter:?}"
            );
            assert_eq!(
                newer, expected,
                "round {round}: walking newer with {filter:?}"
            );
        } else {
            let got: Vec<Seq> = first.entries.iter().map(|e| e.seq).collect();
            assert_eq!(
                got,
                expected.iter().take(limit).copied().collect::<Vec<_>>(),
                "round {round}: {filter:?}"
            );
        }
    }
}

/// A filter value holding U+0000 matches nothing (no stored text can hold one) and is no error,
/// whichever filter carries it, for a page and a count alike.
pub async fn a_filter_value_with_nul_matches_nothing(store: Arc<dyn Store>) {
    let a = org(&store, "nul").await;
    let mut e = event("update", T0);
    e.description = Some("printer renamed".into());
    store.append(a, request(vec![e])).await.unwrap();
    let nul = "print\0er".to_string();
    let filters = [
        EventFilter {
            q: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            q: Some("\0".into()),
            ..EventFilter::default()
        },
        EventFilter {
            action: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            actor: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            entity_id: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            entity_type: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            channel: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            correlation_id: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            ip: Some(nul.clone()),
            ..EventFilter::default()
        },
        EventFilter {
            detailed_action: Some(DetailedActionMatch::Prefix(nul.clone())),
            ..EventFilter::default()
        },
    ];
    for filter in filters {
        let page = store
            .list(
                a,
                &PageRequest {
                    filter: filter.clone(),
                    limit: 10,
                    cursor: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
        assert!(page.entries.is_empty(), "{filter:?}");
        assert_eq!(page.total, 0, "{filter:?}");
    }
}
