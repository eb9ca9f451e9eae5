//! The web console: server-rendered HTML from the same binary.

pub mod log_page;
pub mod render;
