//! The client against a real `stele serve` (the workspace's own binary, a process of its own on
//! a temporary data directory): what it records is what the server stores, once, through a
//! server killed and started again, with refused events reported and platform keys' events
//! going to their organizations. One test binary holding a module per area.

mod delivery;
mod layer;
mod platform;
mod restart;
mod support;
