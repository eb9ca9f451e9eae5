//! Time for the scheduler and retention, injectable: the server runs on [`SystemClock`]; tests
//! give it a [`ManualClock`] and move time forward instead of sleeping.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use stele_core::time::{Millis, now_millis};
use tokio::sync::Notify;

#[async_trait]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
    /// Returns once [`Clock::now`] has reached `at`.
    async fn sleep_until(&self, at: Millis);
}

/// A shareable clock handle for the configuration.
#[derive(Clone)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl SharedClock {
    pub fn system() -> SharedClock {
        SharedClock(Arc::new(SystemClock))
    }
}

impl std::ops::Deref for SharedClock {
    type Target = dyn Clock;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now = {})", self.0.now())
    }
}

/// The wall clock.
pub struct SystemClock;

/// Sleeps are cut into steps of at most this, so that a wall-clock change (NTP, a suspended
/// machine) delays a scheduled run by no more than a step.
const SYSTEM_SLEEP_STEP: Duration = Duration::from_secs(60);

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Millis {
        now_millis()
    }

    async fn sleep_until(&self, at: Millis) {
        loop {
            let left = at - now_millis();
            if left <= 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(left as u64).min(SYSTEM_SLEEP_STEP)).await;
        }
    }
}

/// A clock that moves only when told to.
pub struct ManualClock {
    now: Mutex<Millis>,
    moved: Notify,
}

impl ManualClock {
    pub fn starting_at(now: Millis) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: Mutex::new(now),
            moved: Notify::new(),
        })
    }

    pub fn set(&self, now: Millis) {
        *self.now.lock().expect("clock") = now;
        self.moved.notify_waiters();
    }

    pub fn advance(&self, by: Duration) {
        let now = self.now() + by.as_millis() as Millis;
        self.set(now);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Millis {
        *self.now.lock().expect("clock")
    }

    async fn sleep_until(&self, at: Millis) {
        loop {
            // Registered before the check, so a move between the check and the wait is seen.
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if self.now() >= at {
                return;
            }
            moved.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_it_reaches_their_time() {
        let clock = ManualClock::starting_at(1_000);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(5_000).await })
        };
        clock.advance(Duration::from_millis(1_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "2,000 is before 5,000");
        clock.set(5_000);
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken")
            .unwrap();
    }
}
