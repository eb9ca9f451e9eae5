//! Sign-in rate limiting: failed attempts are counted per account (the email typed, existing or
//! not) and per client address, over a sliding window. Once either count reaches its limit,
//! further attempts are refused without checking the password until the oldest failure in the
//! window ages out.
//!
//! The counts live in this process only (a std Mutex around two maps; the critical sections never
//! await). Several servers behind one load balancer each count on their own, so the effective
//! limit is the per-process limit times the number of processes; docs/console.md says so.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use stele_core::time::Millis;

/// How many failures are allowed, and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_account: usize,
    pub per_ip: usize,
    pub window_ms: Millis,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_account: 5,
            per_ip: 20,
            window_ms: 15 * 60 * 1000,
        }
    }
}

/// Why an attempt is refused, and for how much longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Account { retry_after_ms: Millis },
    Ip { retry_after_ms: Millis },
}

impl Blocked {
    pub fn retry_after_ms(self) -> Millis {
        match self {
            Blocked::Account { retry_after_ms } | Blocked::Ip { retry_after_ms } => retry_after_ms,
        }
    }
}

/// Past this many tracked keys, keys with no failure left in the window are dropped.
const SWEEP_ABOVE: usize = 10_000;

pub struct RateLimiter {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, VecDeque<Millis>>,
    ips: HashMap<IpKey, VecDeque<Millis>>,
}

/// An IPv4 address, or the /64 network of an IPv6 address (one host usually has a whole /64, so
/// counting single IPv6 addresses would count nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpKey {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => IpKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl RateLimiter {
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether an attempt for `account` from `ip` may go ahead at `now`.
    pub fn check(&self, account: &str, ip: Option<IpAddr>, now: Millis) -> Result<(), Blocked> {
        let state = self.state.lock().expect("rate limiter");
        let window = self.limits.window_ms;
        if let Some(retry_after_ms) = state
            .accounts
            .get(account)
            .and_then(|f| blocked_for(f, self.limits.per_account, window, now))
        {
            return Err(Blocked::Account { retry_after_ms });
        }
        if let Some(retry_after_ms) = ip
            .and_then(|ip| state.ips.get(&IpKey::from(ip)))
            .and_then(|f| blocked_for(f, self.limits.per_ip, window, now))
        {
            return Err(Blocked::Ip { retry_after_ms });
        }
        Ok(())
    }

    /// Counts a failed attempt against the account and the address.
    pub fn failed(&self, account: &str, ip: Option<IpAddr>, now: Millis) {
        let mut state = self.state.lock().expect("rate limiter");
        let window = self.limits.window_ms;
        if state.accounts.len() + state.ips.len() > SWEEP_ABOVE {
            let live = |f: &mut VecDeque<Millis>| f.back().is_some_and(|t| now - t < window);
            state.accounts.retain(|_, f| live(f));
            state.ips.retain(|_, f| live(f));
        }
        let failures = state.accounts.entry(account.to_string()).or_default();
        remember(failures, self.limits.per_account, now);
        if let Some(ip) = ip {
            let failures = state.ips.entry(IpKey::from(ip)).or_default();
            remember(failures, self.limits.per_ip, now);
        }
    }

    /// A successful sign-in clears the account's failures (not the address's: one right password
    /// does not vouch for the other attempts from there).
    pub fn succeeded(&self, account: &str) {
        self.state
            .lock()
            .expect("rate limiter")
            .accounts
            .remove(account);
    }
}

/// Keeps the newest `limit` failure times: all that deciding needs.
fn remember(failures: &mut VecDeque<Millis>, limit: usize, now: Millis) {
    failures.push_back(now);
    while failures.len() > limit {
        failures.pop_front();
    }
}

/// How long until an attempt is allowed again, if `limit` failures fall within the window.
fn blocked_for(
    failures: &VecDeque<Millis>,
    limit: usize,
    window: Millis,
    now: Millis,
) -> Option<Millis> {
    let in_window: Vec<Millis> = failures
        .iter()
        .copied()
        .filter(|t| now - t < window)
        .collect();
    if in_window.len() < limit {
        return None;
    }
    // Allowed again once the oldest failure that keeps the count at the limit leaves the window.
    let oldest = in_window[in_window.len() - limit];
    Some(oldest + window - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_account_is_blocked_after_its_limit_until_the_window_passes() {
        let limiter = RateLimiter::new(Limits::default());
        let a = ip("192.0.2.1");
        for i in 0..5 {
            assert_eq!(limiter.check("ada@example.com", a, i * MIN), Ok(()));
            limiter.failed("ada@example.com", a, i * MIN);
        }
        assert_eq!(
            limiter.check("ada@example.com", ip("198.51.100.9"), 5 * MIN),
            Err(Blocked::Account {
                retry_after_ms: 10 * MIN
            }),
            "from anywhere"
        );
        assert_eq!(limiter.check("bob@example.com", a, 5 * MIN), Ok(()));
        assert_eq!(limiter.check("ada@example.com", a, 15 * MIN), Ok(()));
    }

    #[test]
    fn an_address_is_blocked_after_its_limit_whatever_the_account() {
        let limiter = RateLimiter::new(Limits::default());
        for i in 0..20 {
            limiter.failed(&format!("user{i}@example.com"), ip("2001:db8::1"), 0);
        }
        let blocked = limiter.check("new@example.com", ip("2001:db8::2"), MIN);
        assert!(
            matches!(blocked, Err(Blocked::Ip { .. })),
            "same /64: {blocked:?}"
        );
        assert_eq!(
            limiter.check("new@example.com", ip("2001:db8:0:1::1"), MIN),
            Ok(())
        );
        assert_eq!(limiter.check("new@example.com", None, MIN), Ok(()));
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let limits = Limits {
            per_account: 2,
            per_ip: 3,
            window_ms: 10 * MIN,
        };
        let limiter = RateLimiter::new(limits);
        let a = ip("::ffff:192.0.2.1");
        limiter.failed("ada", a, 0);
        limiter.failed("ada", a, 0);
        assert!(limiter.check("ada", None, 0).is_err());
        limiter.succeeded("ada");
        assert_eq!(limiter.check("ada", None, 0), Ok(()));
        limiter.failed("eve", ip("192.0.2.1"), 0);
        assert!(
            matches!(limiter.check("x", a, 0), Err(Blocked::Ip { .. })),
            "IPv4-mapped addresses count as IPv4"
        );
    }
}
