//! Conformance of export jobs: from pending to ready to expired within their organization,
//! interrupted when their runner goes quiet, and forgotten once old.

use std::sync::Arc;

use super::{T0, org};
use crate::{
    EXPORT_INTERRUPTED, ExportJobOutcome, ExportJobState, ExportSweep, ExportSweepOutcome,
    NewExportJob, Store, StoreError,
};

fn new_export_job(created_at: i64) -> NewExportJob {
    NewExportJob {
        format: "ndjson".into(),
        filters: r#"{"action":"update","actor_type":"user"}"#.into(),
        runner: "127.0.0.1:8080/ab12cd".into(),
        created_at,
    }
}

fn ready(entries: u64, finished_at: i64, expires_at: i64) -> ExportJobOutcome {
    ExportJobOutcome::Ready {
        entries,
        bytes: 120,
        finished_at,
        expires_at,
    }
}

fn sweep_at(now: i64, stale_before: i64, forget_before: i64) -> ExportSweep {
    ExportSweep {
        now,
        stale_before,
        forget_before,
    }
}

pub async fn export_jobs_go_from_pending_to_ready_to_expired_within_their_organization(
    store: Arc<dyn Store>,
) {
    let a = org(&store, "a").await;
    let b = org(&store, "b").await;
    let job = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    assert!(job.id.starts_with("exp_"), "{}", job.id);
    assert_eq!(job.org, a);
    assert_eq!(job.state, ExportJobState::Pending);
    assert_eq!(
        (
            job.format.as_str(),
            job.filters.as_str(),
            job.runner.as_str()
        ),
        (
            "ndjson",
            r#"{"action":"update","actor_type":"user"}"#,
            "127.0.0.1:8080/ab12cd"
        )
    );
    assert_eq!((job.created_at, job.heartbeat_at), (T0, T0));
    assert_eq!(
        (job.finished_at, job.entries, job.bytes, job.expires_at),
        (None, None, None, None)
    );
    assert_eq!(job.error, None);
    assert_eq!(
        store.export_job(a, &job.id).await.unwrap(),
        Some(job.clone())
    );
    assert_eq!(
        store.export_job(b, &job.id).await.unwrap(),
        None,
        "another organization's job is not found"
    );
    assert_eq!(store.export_job(a, "exp_none").await.unwrap(), None);
    assert_eq!(store.export_job(a, "exp_\0").await.unwrap(), None);
    let theirs = store
        .create_export_job(b, new_export_job(T0))
        .await
        .unwrap();
    assert_ne!(theirs.id, job.id);

    // Heartbeats move forward only.
    assert!(store.touch_export_job(&job.id, T0 + 1000).await.unwrap());
    assert!(store.touch_export_job(&job.id, T0 + 500).await.unwrap());
    let beating = store.export_job(a, &job.id).await.unwrap().unwrap();
    assert_eq!(beating.heartbeat_at, T0 + 1000);
    assert!(!store.touch_export_job("exp_none", T0).await.unwrap());

    // Ready once: a second outcome changes nothing.
    let expires = T0 + 62_000;
    assert!(
        store
            .finish_export_job(&job.id, ready(3, T0 + 2000, expires))
            .await
            .unwrap()
    );
    let failed = ExportJobOutcome::Failed {
        message: "too late".into(),
        finished_at: T0 + 3000,
    };
    assert!(!store.finish_export_job(&job.id, failed).await.unwrap());
    assert!(!store.touch_export_job(&job.id, T0 + 3000).await.unwrap());
    let done = store.export_job(a, &job.id).await.unwrap().unwrap();
    assert_eq!(done.state, ExportJobState::Ready);
    assert_eq!(
        (done.entries, done.bytes, done.finished_at, done.expires_at),
        (Some(3), Some(120), Some(T0 + 2000), Some(expires))
    );
    assert_eq!(done.error, None);
    assert_eq!(done.state_at(expires - 1), ExportJobState::Ready);
    assert_eq!(done.state_at(expires), ExportJobState::Expired);

    // Links: found by job id and token hash together, never across jobs.
    store
        .add_export_link(&job.id, [1; 32], T0 + 3000)
        .await
        .unwrap();
    store
        .add_export_link(&job.id, [2; 32], T0 + 4000)
        .await
        .unwrap();
    for token in [[1; 32], [2; 32]] {
        assert_eq!(
            store.export_job_by_link(&job.id, token).await.unwrap(),
            Some(done.clone())
        );
    }
    assert_eq!(
        store.export_job_by_link(&job.id, [3; 32]).await.unwrap(),
        None
    );
    assert_eq!(
        store.export_job_by_link(&theirs.id, [1; 32]).await.unwrap(),
        None
    );
    assert!(matches!(
        store.add_export_link("exp_none", [4; 32], T0).await,
        Err(StoreError::NotFound)
    ));

    // Until the window ends the file is live, and the sweep leaves the job alone.
    let mut live = store.live_export_job_ids(expires - 1).await.unwrap();
    live.sort();
    let mut both = vec![job.id.clone(), theirs.id.clone()];
    both.sort();
    assert_eq!(live, both);
    assert_eq!(
        store
            .sweep_export_jobs(sweep_at(expires - 1, T0, T0))
            .await
            .unwrap(),
        ExportSweepOutcome::default()
    );
    assert_eq!(
        store.live_export_job_ids(expires).await.unwrap(),
        vec![theirs.id.clone()],
        "the pending job only"
    );
    let swept = store
        .sweep_export_jobs(sweep_at(expires, T0, T0))
        .await
        .unwrap();
    assert_eq!(
        swept,
        ExportSweepOutcome {
            expired: 1,
            ..ExportSweepOutcome::default()
        }
    );
    let expired = store.export_job(a, &job.id).await.unwrap().unwrap();
    assert_eq!(expired.state, ExportJobState::Expired);
    assert_eq!(expired.entries, Some(3));
    // A link still names its expired job, so a late download can be told it expired.
    assert_eq!(
        store.export_job_by_link(&job.id, [1; 32]).await.unwrap(),
        Some(expired)
    );
}

pub async fn export_jobs_whose_runner_went_quiet_are_interrupted_and_old_ones_forgotten(
    store: Arc<dyn Store>,
) {
    let a = org(&store, "a").await;
    let quiet = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    let beating = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    assert!(
        store
            .touch_export_job(&beating.id, T0 + 60_000)
            .await
            .unwrap()
    );

    let swept = store
        .sweep_export_jobs(sweep_at(T0 + 90_000, T0 + 30_000, T0))
        .await
        .unwrap();
    assert_eq!(
        swept,
        ExportSweepOutcome {
            interrupted: 1,
            ..ExportSweepOutcome::default()
        }
    );
    let interrupted = store.export_job(a, &quiet.id).await.unwrap().unwrap();
    assert_eq!(interrupted.state, ExportJobState::Error);
    assert_eq!(interrupted.error.as_deref(), Some(EXPORT_INTERRUPTED));
    assert_eq!(interrupted.finished_at, Some(T0 + 90_000));
    // A runner that comes back late cannot revive it.
    assert!(
        !store
            .touch_export_job(&quiet.id, T0 + 91_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_export_job(&quiet.id, ready(1, T0 + 91_000, T0 + 200_000))
            .await
            .unwrap()
    );
    assert_eq!(
        store.export_job(a, &quiet.id).await.unwrap(),
        Some(interrupted)
    );
    assert_eq!(
        store
            .export_job(a, &beating.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        ExportJobState::Pending
    );
    assert_eq!(
        store.live_export_job_ids(T0 + 90_000).await.unwrap(),
        vec![beating.id.clone()]
    );

    // The runner's own failure.
    let failed = ExportJobOutcome::Failed {
        message: "writing the export file failed".into(),
        finished_at: T0 + 95_000,
    };
    assert!(store.finish_export_job(&beating.id, failed).await.unwrap());
    let failed = store.export_job(a, &beating.id).await.unwrap().unwrap();
    assert_eq!(failed.state, ExportJobState::Error);
    assert_eq!(
        failed.error.as_deref(),
        Some("writing the export file failed")
    );
    assert!(store.live_export_job_ids(T0).await.unwrap().is_empty());

    // An expired job with a link, then everything that ended long enough ago is forgotten.
    let old = store
        .create_export_job(a, new_export_job(T0))
        .await
        .unwrap();
    assert!(
        store
            .finish_export_job(&old.id, ready(0, T0 + 1000, T0 + 100_000))
            .await
            .unwrap()
    );
    store.add_export_link(&old.id, [7; 32], T0).await.unwrap();
    let kept = store
        .sweep_export_jobs(sweep_at(T0 + 100_000, T0, T0 + 90_000))
        .await
        .unwrap();
    assert_eq!(
        kept,
        ExportSweepOutcome {
            expired: 1,
            ..ExportSweepOutcome::default()
        },
        "nothing ended before the cut-off"
    );
    let forgot = store
        .sweep_export_jobs(sweep_at(T0 + 200_000, T0, T0 + 100_001))
        .await
        .unwrap();
    assert_eq!(forgot.forgotten, 3);
    for id in [&quiet.id, &beating.id, &old.id] {
        assert_eq!(store.export_job(a, id).await.unwrap(), None);
    }
    assert_eq!(
        store.export_job_by_link(&old.id, [7; 32]).await.unwrap(),
        None
    );
}
