//! The web console, end to end: a real server and a real headless Chromium (`harness.rs`), plus
//! plain HTTP for what a browser would not do and for status codes, which WebDriver does not
//! show. One test binary with a module per page.

mod embed;
mod harness;
mod log;
mod members_api;
mod organizations;
mod phone;
mod print_log;
mod retraced_viewer;
mod settings;
mod sign_in;
