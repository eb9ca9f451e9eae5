//! Members and their sessions: the people who sign in to the web console ([`Members`], with its
//! types).
//!
//! The server hashes passwords (Argon2id) and session tokens (SHA-256); the store keeps only the
//! hashes.
//!
//! Two levels, because signing in names no organization but one person may work in several:
//! - a *person*, one per email across Stele (compared by [`email_key`]), holds what signing in
//!   checks: the email, the name and the password hash;
//! - a *member* is that person's membership of one organization (`mem_…`), with what that
//!   organization decides: the role and whether it is disabled.
//!
//! [`Member`] is the membership joined with its person and organization, so callers see one row
//! as before. A session belongs to one membership at a time and can be moved to another of the
//! same person ([`Members::switch_session`]). No organization sees another's members: every
//! lookup but sign-in's ([`Members::memberships_by_email`]) names the organization.

use std::fmt;

use async_trait::async_trait;
use stele_core::time::Millis;

use crate::{OrgKey, Result};

#[async_trait]
pub trait Members: Send + Sync {
    /// Adds a member to the organization and returns it with its `mem_…` id. When a person with
    /// the same email exists (a member of another organization), the membership is theirs and
    /// their email, password hash and name stay as they are (the name is only filled in when they
    /// had none): one organization must not change how someone signs in to the others. Otherwise
    /// the person is created from `member`. `Conflict` only when this organization already has a
    /// member with the email.
    async fn create_member(&self, org: OrgKey, member: NewMember) -> Result<Member>;

    /// The organization's member with this id; another organization's member is `None`.
    async fn member(&self, org: OrgKey, id: &str) -> Result<Option<Member>>;

    /// Every membership of the person with this email (compared by [`email_key`]), disabled ones
    /// included: how sign-in finds an account and the console lists the organizations to switch
    /// to. The membership the person signed in to or switched to last comes first, then the
    /// others oldest first, so sign-in can pick up where the person left off. Empty when no
    /// person has the email.
    async fn memberships_by_email(&self, email: &str) -> Result<Vec<Member>>;

    /// The organization's members, oldest first.
    async fn list_members(&self, org: OrgKey) -> Result<Vec<Member>>;

    /// Changes a member's role or disabled flag (this membership only), or the password (the
    /// person's, so every organization of theirs); `NotFound` when the organization has no member
    /// with this id. A new password ends every session of the person, in every organization.
    async fn update_member(&self, org: OrgKey, id: &str, update: MemberUpdate) -> Result<Member>;

    /// Removes a member from the organization, with the sessions on this membership; returns who
    /// it was. The person goes with their last membership, so no password hash outlives every
    /// organization that knew them. `NotFound` when the organization has no member with this id.
    async fn remove_member(&self, org: OrgKey, id: &str) -> Result<Member>;

    /// Starts a session on a membership, which becomes the person's last used one. `NotFound`
    /// when no member has the id.
    async fn create_session(&self, session: NewSession) -> Result<()>;

    /// Moves the live session whose token hashes to `token_hash` to the membership `member_id`
    /// of the same person (the console's organization switcher), which becomes the person's last
    /// used one; returns the session as it now is. `None`, changing nothing, when the session is
    /// not live at `now` or the membership is not the same person's, or is disabled: a session
    /// never reaches an organization its person could not sign in to.
    async fn switch_session(
        &self,
        token_hash: &SessionHash,
        member_id: &str,
        now: Millis,
    ) -> Result<Option<Session>>;

    /// The session whose token hashes to `token_hash`, if it is live at `now`: not revoked, not
    /// expired (`now < expires_at`), and its member not disabled.
    async fn session(&self, token_hash: &SessionHash, now: Millis) -> Result<Option<Session>>;

    /// Records that the session was used at `now` (`last_seen_at` only moves forward).
    async fn touch_session(&self, token_hash: &SessionHash, now: Millis) -> Result<()>;

    /// Ends the session (sign-out). True when this call revoked it; revoking twice, or a token
    /// that names no session, is not an error (false).
    async fn revoke_session(&self, token_hash: &SessionHash, now: Millis) -> Result<bool>;

    /// Deletes sessions that expired or were revoked before `ended_before`; returns how many.
    async fn forget_sessions(&self, ended_before: Millis) -> Result<u64>;
}

/// What makes two member emails the same: trimmed and lowercased (Unicode), so `Ada@Example.com`
/// and `ada@example.com` are one person. Both backends keep this key with a unique index on
/// people, so they agree on what a duplicate is, and sign-in looks people up by it.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A member to add to an organization.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMember {
    /// As given (shown as typed); one person across Stele by [`email_key`].
    pub email: String,
    pub name: Option<String>,
    /// The role's name (`owner`, `admin`, …). The server knows what each role allows; the store
    /// keeps the name.
    pub role: String,
    /// The password's Argon2id hash as a PHC string (`$argon2id$v=19$…`), made by the server.
    /// The store never sees a password. Only used when the email names no person yet.
    pub password_hash: String,
    pub created_at: Millis,
}

impl fmt::Debug for NewMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMember")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"..")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A member of an organization (a membership, joined with its person): someone who signs in to
/// the console.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    /// `mem_…`, assigned by the store.
    pub id: String,
    pub org: OrgKey,
    /// The organization's public id (`org_…`) and name, for the console's header.
    pub org_id: String,
    pub org_name: String,
    /// The person's: the same in each of their organizations.
    pub email: String,
    pub name: Option<String>,
    /// This membership's.
    pub role: String,
    /// The person's (sign-in is per person).
    pub password_hash: String,
    /// When the membership was made.
    pub created_at: Millis,
    /// This membership's: a disabled member cannot sign in to this organization, and sessions on
    /// it stop working; the person's other organizations are not affected.
    pub disabled: bool,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"..")
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// A change to a member; `None` leaves that field as it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MemberUpdate {
    pub role: Option<String>,
    pub disabled: Option<bool>,
    /// A new password's Argon2id hash (PHC string) for the person; setting it ends all of the
    /// person's sessions.
    pub password_hash: Option<String>,
}

impl fmt::Debug for MemberUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberUpdate")
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("password_hash", &self.password_hash.as_ref().map(|_| ".."))
            .finish()
    }
}

/// SHA-256 of a session token. The token (32 random bytes) lives only in the browser's cookie;
/// like an API key it is long and random, so a fast hash is the right tool.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHash(pub [u8; 32]);

impl fmt::Debug for SessionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionHash(..)")
    }
}

/// A session to start for a member who just signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: SessionHash,
    /// The member's public id (`mem_…`).
    pub member_id: String,
    /// Also the first `last_seen_at`.
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A live session with the member it signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub member: Member,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// When the member last used it (kept current by [`Members::touch_session`]).
    pub last_seen_at: Millis,
}
