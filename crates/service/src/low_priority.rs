//! Background work that must not slow the server's requests down: the chain's background
//! verification runs on threads at the lowest CPU priority, so that on a busy machine ingest and
//! queries get the cores first and the verification takes what they leave.
//!
//! This module calls `setpriority(2)`, which std does not wrap; the workspace denies unsafe code
//! everywhere else.
#![allow(unsafe_code)]

use std::future::Future;

/// The nice value of background threads: the lowest priority there is.
const NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to the lowest. On Linux a nice value belongs to a
/// thread (`who = 0` is the calling thread, not the process), so nothing else is slowed down. It
/// cannot be raised back without privileges, so it is only ever done on a thread of our own.
/// Elsewhere it does nothing.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority reads its three integer arguments and nothing else.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not lower a background thread's priority"
            );
        }
    }
}

/// Runs `work` to its end on a new thread named `name`, at the lowest CPU priority, with a
/// runtime of its own: the blocking tasks it spawns (SQLite's reads) run on that runtime's
/// threads, lowered too, never on the server's. Dropping the returned [`Stop`] stops it (work in
/// a blocking task finishes first, detached).
pub fn spawn<F>(name: &str, work: F) -> std::io::Result<Stop>
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(format!("{name}-blocking"))
        .on_thread_start(lower_this_thread)
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_this_thread();
            runtime.block_on(async {
                tokio::select! {
                    () = work => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        })?;
    Ok(Stop(Some(stop)))
}

/// Stops the work [`spawn`] started when dropped.
pub struct Stop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's nice value, from `/proc` (field 19 of its `stat`).
    fn nice_of_this_thread() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn the_work_and_its_blocking_tasks_run_at_the_lowest_priority_and_the_caller_is_untouched() {
        let before = nice_of_this_thread();
        let (tx, rx) = std::sync::mpsc::channel();
        let _stop = spawn("stele-test-low", async move {
            let on_runtime = nice_of_this_thread();
            let blocking = tokio::task::spawn_blocking(nice_of_this_thread)
                .await
                .unwrap();
            tx.send((on_runtime, blocking)).unwrap();
        })
        .unwrap();
        let (on_runtime, blocking) = rx.recv().unwrap();
        assert_eq!((on_runtime, blocking), (NICE, NICE));
        assert_eq!(nice_of_this_thread(), before);
    }

    #[test]
    fn dropping_stop_ends_work_that_would_run_forever() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stop = spawn("stele-test-stop", async move {
            let _ended_when_dropped = tx;
            std::future::pending::<()>().await;
        })
        .unwrap();
        drop(stop);
        // The sender is dropped with the work: recv returns an error instead of blocking.
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .is_err_and(|e| e == std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
