//! Conformance of the print log: ids, filters, pages, stats, and that every change commits with
//! its audit entries (and only with them).

use std::sync::{Arc, Mutex};

use serde_json::json;
use stele_core::{Change, Entity, NewEvent};

use super::{Rng, T0, all, event, everyone, org, sealed};
use crate::{
    Classification, FailureReason, OrgKey, Print, PrintAudit, PrintFields, PrintFilter, PrintId,
    PrintLogChange, PrintStats, PrintStatus, Store, StoreError,
};

/// A print with only the required fields.
pub(super) fn fields(created_at: i64, status: PrintStatus) -> PrintFields {
    PrintFields {
        created_at,
        status,
        failure_reason: None,
        print_name: None,
        printer_id: None,
        printer_name: None,
        started_at: None,
        completed_at: None,
        duration_seconds: None,
        filament_type: None,
        filament_color: None,
        filament_used_grams: None,
        cost: None,
        energy_kwh: None,
        energy_cost: None,
        created_by_username: None,
        archive_id: None,
        thumbnail_path: None,
    }
}

/// An audit that describes each change in one entry (two for a clear of more than two rows, to
/// show that a change may be recorded by several) and notes what it was called with.
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            calls: Mutex::new(vec![]),
        })
    }

    fn audit(self: &Arc<Recorder>) -> PrintAudit {
        let me = self.clone();
        Arc::new(move |change: PrintLogChange<'_>| {
            let entity = |id: Option<PrintId>| {
                Entity::new("PrintLogEntry", id.map(|id| id.to_string()), None)
            };
            let (note, entries) = match change {
                PrintLogChange::Recorded { print } => {
                    let mut e = event("create", T0);
                    e.entity = Some(entity(Some(print.id)));
                    (format!("recorded {}", print.id), vec![e])
                }
                PrintLogChange::Classified { before, after } => {
                    let mut e = event("update", T0);
                    e.entity = Some(entity(Some(before.id)));
                    e.changes = vec![Change {
                        field: "status".into(),
                        old: Some(json!(before.fields.status.as_str())),
                        new: Some(json!(after.fields.status.as_str())),
                    }];
                    (format!("classified {}", before.id), vec![e])
                }
                PrintLogChange::Deleted { print } => {
                    let mut e = event("delete", T0);
                    e.entity = Some(entity(Some(print.id)));
                    (format!("deleted {}", print.id), vec![e])
                }
                PrintLogChange::Cleared { ids } => {
                    let entries = ids
                        .chunks(2)
                        .map(|chunk| {
                            let mut e = event("bulk_delete", T0);
                            e.entity = Some(entity(None));
                            e.entity_ids = chunk.iter().map(PrintId::to_string).collect();
                            e
                        })
                        .collect::<Vec<NewEvent>>();
                    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
                    (format!("cleared {ids:?}"), entries)
                }
            };
            me.calls.lock().unwrap().push(note);
            sealed(entries)
        })
    }

    /// The notes of the calls so far, each once (a backend may call again when it retries).
    fn calls(&self) -> Vec<String> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.dedup();
        calls
    }
}

/// Print `n` of an organization.
fn id(n: i64) -> PrintId {
    PrintId::new(n)
}

/// An audit that describes nothing: the store must refuse the change.
fn silent() -> PrintAudit {
    Arc::new(|_: PrintLogChange<'_>| vec![])
}

pub(super) async fn record(store: &Arc<dyn Store>, org: OrgKey, f: PrintFields) -> Print {
    store
        .record_print(org, f, Recorder::new().audit())
        .await
        .expect("record print")
}

/// The organization's trail, oldest first, as `(action, entity id, entity_ids)`.
async fn trail(store: &Arc<dyn Store>, org: OrgKey) -> Vec<(String, Option<String>, Vec<String>)> {
    let mut entries = all(store, org, everyone()).await;
    entries.reverse();
    entries
        .into_iter()
        .map(|e| {
            (
                e.event.action,
                e.event.entity.and_then(|x| x.id),
                e.event.entity_ids,
            )
        })
        .collect()
}

pub async fn print_log_ids_count_per_organization_and_are_never_reused(store: Arc<dyn Store>) {
    let (a, b) = (org(&store, "a").await, org(&store, "b").await);
    let mut ids = vec![];
    for i in 0..3 {
        ids.push(
            record(&store, a, fields(T0 + i, PrintStatus::Completed))
                .await
                .id,
        );
    }
    assert_eq!(ids, [id(1), id(2), id(3)]);
    assert_eq!(
        record(&store, b, fields(T0, PrintStatus::Failed)).await.id,
        id(1),
        "each organization counts its own"
    );

    store
        .delete_print(a, id(3), Recorder::new().audit())
        .await
        .unwrap();
    assert_eq!(
        record(&store, a, fields(T0, PrintStatus::Completed))
            .await
            .id,
        id(4),
        "a deleted id is not handed out again"
    );
    assert_eq!(
        store
            .clear_prints(a, Recorder::new().audit())
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        record(&store, a, fields(T0, PrintStatus::Completed))
            .await
            .id,
        id(5),
        "nor is one a clear removed"
    );

    // Another organization's id names nothing.
    let b_print = store.print(b, id(1)).await.unwrap().unwrap();
    assert_eq!(b_print.fields.status, PrintStatus::Failed);
    assert_eq!(store.print(b, id(5)).await.unwrap(), None);
    let recorder = Recorder::new();
    let status = Classification {
        status: Some(PrintStatus::Skipped),
        failure_reason: None,
    };
    assert!(matches!(
        store
            .classify_print(b, id(5), status, recorder.audit())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_print(b, id(5), recorder.audit()).await,
        Err(StoreError::NotFound)
    ));
    assert!(recorder.calls().is_empty(), "{:?}", recorder.calls());
    assert_eq!(store.print(a, id(5)).await.unwrap().unwrap().id, id(5));
    assert_eq!(store.print(b, id(1)).await.unwrap(), Some(b_print));
}

pub async fn print_log_rows_round_trip_every_field_and_vocabulary(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let full = PrintFields {
        created_at: T0 + 5,
        status: PrintStatus::Failed,
        failure_reason: Some(FailureReason::SpaghettiDetached),
        print_name: Some("Benchy «ünïcode» <b>".into()),
        printer_id: Some(7),
        printer_name: Some("Workshop X1C".into()),
        started_at: Some(T0 - 3_600_000),
        completed_at: Some(T0),
        duration_seconds: Some(3600),
        filament_type: Some("PLA".into()),
        filament_color: Some("#FF0000".into()),
        filament_used_grams: Some(12.75),
        cost: Some(0.5),
        energy_kwh: Some(0.125),
        energy_cost: Some(0.03),
        created_by_username: Some("ada".into()),
        archive_id: Some(42),
        thumbnail_path: Some("archives/42/thumb.png".into()),
    };
    let print = record(&store, a, full.clone()).await;
    assert_eq!(print.fields, full);
    assert_eq!(store.print(a, print.id).await.unwrap(), Some(print));
    let bare = record(&store, a, fields(T0, PrintStatus::Completed)).await;
    assert_eq!(store.print(a, bare.id).await.unwrap(), Some(bare));

    // Every word of both vocabularies can be stored and read back.
    for status in PrintStatus::ALL {
        let p = record(&store, a, fields(T0, status)).await;
        assert_eq!(
            store.print(a, p.id).await.unwrap().unwrap().fields.status,
            status
        );
    }
    for reason in FailureReason::ALL {
        let mut f = fields(T0, PrintStatus::Failed);
        f.failure_reason = Some(reason);
        let p = record(&store, a, f).await;
        let got = store.print(a, p.id).await.unwrap().unwrap();
        assert_eq!(got.fields.failure_reason, Some(reason));
    }
}

/// What the store must answer, computed over the rows in Rust.
fn model_stats(rows: &[Print]) -> PrintStats {
    let count = |f: &dyn Fn(&Print) -> bool| rows.iter().filter(|p| f(p)).count() as u64;
    let sum = |f: &dyn Fn(&Print) -> Option<f64>| rows.iter().filter_map(f).sum::<f64>();
    let mut by_type: Vec<(String, f64)> = vec![];
    for p in rows {
        if let Some(t) = &p.fields.filament_type {
            let grams = p.fields.filament_used_grams.unwrap_or(0.0);
            match by_type.iter_mut().find(|(x, _)| x == t) {
                Some((_, g)) => *g += grams,
                None => by_type.push((t.clone(), grams)),
            }
        }
    }
    by_type.sort_by(|a, b| a.0.cmp(&b.0));
    PrintStats {
        total: rows.len() as u64,
        by_status: PrintStatus::ALL
            .map(|s| (s, count(&|p| p.fields.status == s)))
            .to_vec(),
        by_failure_reason: FailureReason::ALL
            .map(|r| (r, count(&|p| p.fields.failure_reason == Some(r))))
            .to_vec(),
        unclassified_failures: count(&|p| {
            p.fields.status == PrintStatus::Failed && p.fields.failure_reason.is_none()
        }),
        total_duration_seconds: rows.iter().filter_map(|p| p.fields.duration_seconds).sum(),
        timed_prints: count(&|p| p.fields.duration_seconds.is_some()),
        filament_grams_by_type: by_type,
        total_filament_grams: sum(&|p| p.fields.filament_used_grams),
        total_cost: sum(&|p| p.fields.cost),
        total_energy_kwh: sum(&|p| p.fields.energy_kwh),
        total_energy_cost: sum(&|p| p.fields.energy_cost),
    }
}

fn model_matches(f: &PrintFilter, p: &Print) -> bool {
    let x = &p.fields;
    f.search.as_ref().is_none_or(|needle| {
        x.print_name
            .as_ref()
            .is_some_and(|name| name.to_lowercase().contains(&needle.to_lowercase()))
    }) && f.printer_id.is_none_or(|id| x.printer_id == Some(id))
        && f.created_by_username
            .as_ref()
            .is_none_or(|u| x.created_by_username.as_ref() == Some(u))
        && f.status.is_none_or(|s| x.status == s)
        && f.from.is_none_or(|from| x.created_at >= from)
        && f.to.is_none_or(|to| x.created_at < to)
}

const NAMES: &[Option<&str>] = &[
    Some("Benchy"),
    Some("benchy v2"),
    Some("3DBenchy (PETG)"),
    Some("ÄRGER-Bügel"),
    Some("Éclair holder"),
    Some("50%_off sign"),
    Some("back\\slash"),
    Some(""),
    None,
];
const NEEDLES: &[&str] = &[
    "benchy", "BENCHY", "ärger", "éclair", "%", "_off", "\\", "%_", "bench", "zzz", "e",
];
const USERS: &[Option<&str>] = &[Some("ada"), Some("bob"), Some("Ada"), None];
const TYPES: &[Option<&str>] = &[Some("PLA"), Some("PETG"), Some("ABS"), None];

pub async fn print_log_filters_pages_and_stats_match_brute_force(store: Arc<dyn Store>) {
    let (a, b) = (org(&store, "a").await, org(&store, "b").await);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut rows = vec![];
    for _ in 0..240 {
        let mut f = fields(
            // Few distinct times, so ties (broken by id) are common.
            T0 + (rng.next() % 40) as i64 * 3_600_000,
            *rng.pick(&PrintStatus::ALL),
        );
        f.print_name = rng.pick(NAMES).map(str::to_string);
        f.printer_id = rng.pick(&[Some(1), Some(2), Some(3), None]).to_owned();
        f.created_by_username = rng.pick(USERS).map(str::to_string);
        if rng.chance(40) {
            f.failure_reason = Some(*rng.pick(&FailureReason::ALL));
        }
        if rng.chance(80) {
            f.duration_seconds = Some((rng.next() % 20_000) as i64);
        }
        f.filament_type = rng.pick(TYPES).map(str::to_string);
        // Quarters add up exactly in binary floating point, whatever the order.
        let quarter = |rng: &mut Rng| (rng.next() % 400) as f64 * 0.25;
        if rng.chance(85) {
            f.filament_used_grams = Some(quarter(&mut rng));
        }
        if rng.chance(70) {
            f.cost = Some(quarter(&mut rng));
            f.energy_kwh = Some(quarter(&mut rng));
            f.energy_cost = Some(quarter(&mut rng));
        }
        rows.push(record(&store, a, f).await);
    }
    // Rows of another organization that every filter would match.
    for _ in 0..5 {
        let mut f = fields(T0, PrintStatus::Failed);
        f.print_name = Some("Benchy".into());
        f.printer_id = Some(1);
        f.created_by_username = Some("ada".into());
        f.filament_used_grams = Some(1000.0);
        record(&store, b, f).await;
    }

    let mut filters = vec![PrintFilter::default()];
    for _ in 0..60 {
        let mut f = PrintFilter::default();
        if rng.chance(40) {
            f.search = Some(rng.pick(NEEDLES).to_string());
        }
        if rng.chance(30) {
            f.printer_id = Some((rng.next() % 4) as i64);
        }
        if rng.chance(30) {
            f.created_by_username = rng.pick(USERS).map(str::to_string);
        }
        if rng.chance(30) {
            f.status = Some(*rng.pick(&PrintStatus::ALL));
        }
        if rng.chance(30) {
            f.from = Some(T0 + (rng.next() % 40) as i64 * 3_600_000);
        }
        if rng.chance(30) {
            f.to = Some(T0 + (rng.next() % 40) as i64 * 3_600_000 + 1);
        }
        filters.push(f);
    }

    for filter in &filters {
        let mut expected: Vec<Print> = rows
            .iter()
            .filter(|p| model_matches(filter, p))
            .cloned()
            .collect();
        expected.sort_by_key(|p| std::cmp::Reverse((p.fields.created_at, p.id)));
        for (limit, offset) in [
            (500, 0),
            (7, 0),
            (7, 7),
            (25, 3),
            (1, expected.len() as u64),
        ] {
            let page = store
                .list_prints(a, filter, limit, offset)
                .await
                .expect("list prints");
            assert_eq!(page.total, expected.len() as u64, "{filter:?}");
            let want: Vec<PrintId> = expected
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .map(|p| p.id)
                .collect();
            let got: Vec<PrintId> = page.items.iter().map(|p| p.id).collect();
            assert_eq!(got, want, "{filter:?} limit {limit} offset {offset}");
        }
        let stats = store.print_stats(a, filter).await.expect("stats");
        assert_eq!(stats, model_stats(&expected), "{filter:?}");
    }
    let full = store
        .list_prints(a, &PrintFilter::default(), 500, 0)
        .await
        .unwrap();
    let mut newest_first = rows.clone();
    newest_first.sort_by_key(|p| std::cmp::Reverse((p.fields.created_at, p.id)));
    assert_eq!(full.items, newest_first, "every field, in order");

    // Stats of an empty selection are zeros, and the average is absent.
    let none = PrintFilter {
        search: Some("no such print".into()),
        ..PrintFilter::default()
    };
    let empty = store.print_stats(a, &none).await.unwrap();
    assert_eq!(empty, model_stats(&[]));
    assert_eq!(empty.average_duration_seconds(), None);
}

pub async fn print_log_changes_commit_with_their_audit_entries(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let recorder = Recorder::new();
    let mut ids = vec![];
    for status in [
        PrintStatus::Failed,
        PrintStatus::Completed,
        PrintStatus::Failed,
    ] {
        let mut f = fields(T0, status);
        f.filament_used_grams = Some(10.0);
        ids.push(store.record_print(a, f, recorder.audit()).await.unwrap().id);
    }
    let failed = PrintFilter {
        status: Some(PrintStatus::Failed),
        ..PrintFilter::default()
    };

    // A reclassification changes the row, the stats at once, and appends its entry.
    let clogged = Classification {
        status: None,
        failure_reason: Some(Some(FailureReason::CloggedNozzle)),
    };
    let (before, after) = store
        .classify_print(a, id(1), clogged, recorder.audit())
        .await
        .unwrap();
    assert_eq!(before.fields.failure_reason, None);
    assert_eq!(
        after.fields.failure_reason,
        Some(FailureReason::CloggedNozzle)
    );
    assert_eq!(after.fields.status, PrintStatus::Failed, "status untouched");
    assert_eq!(store.print(a, id(1)).await.unwrap(), Some(after.clone()));
    let stats = store.print_stats(a, &PrintFilter::default()).await.unwrap();
    assert_eq!(
        stats.by_failure_reason[3],
        (FailureReason::CloggedNozzle, 1)
    );
    assert_eq!(stats.unclassified_failures, 1);

    let completed = Classification {
        status: Some(PrintStatus::Completed),
        failure_reason: Some(None),
    };
    store
        .classify_print(a, id(3), completed, recorder.audit())
        .await
        .unwrap();
    let stats = store.print_stats(a, &failed).await.unwrap();
    assert_eq!((stats.total, stats.total_filament_grams), (1, 10.0));

    // The same classification again changes nothing and records nothing.
    let (same_before, same_after) = store
        .classify_print(a, id(3), completed, recorder.audit())
        .await
        .unwrap();
    assert_eq!(same_before, same_after);

    // A delete drops the row out of the list and the stats at once.
    let deleted = store
        .delete_print(a, id(2), recorder.audit())
        .await
        .unwrap();
    assert_eq!(deleted.id, id(2));
    assert_eq!(store.print(a, id(2)).await.unwrap(), None);
    let stats = store.print_stats(a, &PrintFilter::default()).await.unwrap();
    assert_eq!((stats.total, stats.total_filament_grams), (2, 20.0));

    // A clear lists what it removed.
    assert_eq!(store.clear_prints(a, recorder.audit()).await.unwrap(), 2);
    assert_eq!(
        store
            .list_prints(a, &PrintFilter::default(), 25, 0)
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(store.clear_prints(a, recorder.audit()).await.unwrap(), 0);

    assert_eq!(
        recorder.calls(),
        [
            "recorded 1",
            "recorded 2",
            "recorded 3",
            "classified 1",
            "classified 3",
            "deleted 2",
            "cleared [1, 3]",
        ]
    );
    let s = |x: &str| x.to_string();
    let id = |x: &str| Some(s(x));
    assert_eq!(
        trail(&store, a).await,
        [
            (s("create"), id("1"), vec![]),
            (s("create"), id("2"), vec![]),
            (s("create"), id("3"), vec![]),
            (s("update"), id("1"), vec![]),
            (s("update"), id("3"), vec![]),
            (s("delete"), id("2"), vec![]),
            (s("bulk_delete"), None, vec![s("1"), s("3")]),
        ]
    );
    let report = store.verify(a, None).await.unwrap();
    assert!(report.ok, "{report:?}");
}

pub async fn a_print_log_change_no_audit_entry_describes_is_not_made(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    assert!(
        store
            .record_print(a, fields(T0, PrintStatus::Failed), silent())
            .await
            .is_err()
    );
    let listed = store
        .list_prints(a, &PrintFilter::default(), 25, 0)
        .await
        .unwrap();
    assert_eq!(listed.total, 0, "nothing was recorded");
    let print = record(&store, a, fields(T0, PrintStatus::Failed)).await;
    assert_eq!(print.id, id(1), "the refused record took no id");

    let stopped = Classification {
        status: Some(PrintStatus::Stopped),
        failure_reason: Some(Some(FailureReason::PowerFailure)),
    };
    assert!(
        store
            .classify_print(a, id(1), stopped, silent())
            .await
            .is_err()
    );
    assert!(store.delete_print(a, id(1), silent()).await.is_err());
    assert!(store.clear_prints(a, silent()).await.is_err());
    assert_eq!(store.print(a, id(1)).await.unwrap(), Some(print));
    // Only the one successful record left an entry.
    let entries = all(&store, a, everyone()).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event.action, "create");
}

/// Totals never fail: rows whose durations add up past `i64::MAX` (stored before ingest bounded
/// them) give a total held just under it, on both backends, instead of an error for the whole
/// organization.
pub async fn print_log_totals_hold_whatever_the_rows_add_up_to(store: Arc<dyn Store>) {
    let a = org(&store, "a").await;
    let recorder = Recorder::new();
    for _ in 0..2 {
        let mut f = fields(T0, PrintStatus::Completed);
        f.duration_seconds = Some(i64::MAX);
        store.record_print(a, f, recorder.audit()).await.unwrap();
    }
    let stats = store
        .print_stats(a, &PrintFilter::default())
        .await
        .expect("stats of huge durations");
    assert!(
        stats.total_duration_seconds >= 9_000_000_000_000_000_000,
        "{stats:?}"
    );
}
