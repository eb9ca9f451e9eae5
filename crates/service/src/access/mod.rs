//! Who may do what: API keys ([`api_keys`]), console members and their passwords ([`members`]),
//! roles and the permissions they grant ([`roles`]), each organization's policy (recording on or
//! off, the IP allowlist: [`org_policy`]), the networks the allowlist is written in ([`cidr`]),
//! and the viewer tokens that open an organization's log inside another product ([`viewer`]).

pub mod api_keys;
pub mod cidr;
pub mod members;
pub mod org_policy;
pub mod roles;
pub mod viewer;

pub use cidr::{Cidr, CidrError};
