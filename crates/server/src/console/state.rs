//! What the console keeps for the life of the process. Apart from the console's pages so that the
//! application state can hold it without importing them.

use std::time::Duration;

use super::rate_limit::{Limits, RateLimiter};
use crate::app::config::Config;

/// What the console keeps for the life of the process.
pub struct ConsoleState {
    /// Keys the CSRF tokens (HMAC-SHA256); `stele_service::secrets::console_secret`.
    pub(crate) secret: [u8; 32],
    pub(crate) secure_cookies: bool,
    pub(crate) session_ttl: Duration,
    pub(crate) limiter: RateLimiter,
}

impl ConsoleState {
    pub fn new(secret: [u8; 32], config: &Config) -> ConsoleState {
        ConsoleState {
            secret,
            secure_cookies: config.secure_cookies,
            session_ttl: config.session_ttl,
            limiter: RateLimiter::new(Limits::default()),
        }
    }
}
