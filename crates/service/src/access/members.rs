//! Console members: their passwords (Argon2id, the `argon2` crate's default parameters, stored as
//! PHC strings); adding one, disabling, enabling and removing one; one-time links that let a
//! member set their own password ([`password_link`]). Each change is recorded in the
//! organization's trail.
//!
//! One person (one email) may be a member of several organizations; the password is the
//! person's. So adding someone who already has an account elsewhere only adds a membership and
//! never touches their password, and an organization cannot make a password link for a person
//! who also belongs to another one: whoever sets that password would sign in to the other
//! organizations too. Only the operator (`stele user reset-password`) can. `stele user`, the console's members page and the organizations API
//! (`/v1/organizations/{org}/members`) all come here.
//!
//! Hashing and verifying take tens of milliseconds of CPU on purpose; async callers run them on
//! the blocking pool.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use stele_core::event::Context;
use stele_core::time::Millis;
use stele_store::{Member, MemberUpdate, NewMember, OrgKey, Store, StoreError};

use crate::access::roles::Role;
use crate::random;
use crate::secrets::TokenSigner;
use crate::trail::{self, By, activity};

/// Shorter passwords are refused (NIST SP 800-63B asks for at least 8; Stele guards audit
/// trails, so 12).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer ones are refused too, so that a sign-in form cannot be made to hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Whether a new password is acceptable; the error says why not.
pub fn check_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters long (it has {chars})"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes long"
        ));
    }
    Ok(())
}

/// A plausible email address (`local@domain`, no spaces), trimmed. Sign-in is by email, so the
/// check is about typos, not deliverability.
pub fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(email.to_string())
    } else {
        Err(format!("`{email}` is not an email address"))
    }
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&random::bytes::<16>())
        .map_err(|e| StoreError::Other(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Other(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string (with the parameters the string names). A string
/// that is not a PHC hash matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Spends the time of a real verification for an email that names no member, so that how long
/// a failed sign-in takes does not tell whether the account exists.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy =
        DUMMY.get_or_init(|| hash_password("not the password of anyone").unwrap_or_default());
    let _ = verify_password(password, dummy);
}

/// Why a member could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddMemberError {
    /// The request itself is wrong (the message says what to fix).
    #[error("{0}")]
    Invalid(String),
    /// This organization has a member with this email already.
    #[error("this organization already has a member with the email `{0}`")]
    EmailTaken(String),
    /// The email is an account of another organization that has no password yet: adding it here
    /// would leave it with none, and this organization may not set one (see the module's docs).
    #[error(
        "`{0}` belongs to another organization and has not set a password yet; add them once \
         they have"
    )]
    AwaitingPassword(String),
    #[error(transparent)]
    Store(StoreError),
}

/// A member to add, as an administrator gives it.
pub struct AddMember<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: Role,
    /// `None`: no password yet; the member sets one through a [`password_link`].
    pub password: Option<&'a str>,
}

/// What a member without a password yet has in place of its hash: not a PHC string, so no
/// password verifies against it.
pub const NO_PASSWORD_YET: &str = "!no password yet";

/// A member just added.
#[derive(Debug)]
pub struct Added {
    pub member: Member,
    /// The email was a person's already (a member of another organization): they sign in with
    /// their own password, which adding them did not change (a password given was not used).
    pub existing_account: bool,
}

/// Whether the person with this email exists (as a member of some organization) and has a
/// password: the caller then need not ask for one (`stele user create`, the API's add).
pub async fn has_account(store: &dyn Store, email: &str) -> Result<bool, StoreError> {
    Ok(store
        .memberships_by_email(email)
        .await?
        .first()
        .is_some_and(|m| m.password_hash != NO_PASSWORD_YET))
}

/// Adds a member to the organization and records it (`member.add`, channel `security`) with
/// `by` as the actor: a System actor from the command line, the member who did it from the
/// console. An email of another organization's member adds that person (see the module's docs).
pub async fn add(
    store: &dyn Store,
    org: OrgKey,
    request: AddMember<'_>,
    by: By,
    now: Millis,
) -> Result<Added, AddMemberError> {
    let email = check_email(request.email).map_err(AddMemberError::Invalid)?;
    if let Some(password) = request.password {
        check_password(password).map_err(AddMemberError::Invalid)?;
    }
    let name = request
        .name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(AddMemberError::Invalid(
            "the name must be at most 200 characters long".into(),
        ));
    }
    let existing = store
        .memberships_by_email(&email)
        .await
        .map_err(AddMemberError::Store)?;
    if existing.iter().any(|m| m.org == org) {
        return Err(AddMemberError::EmailTaken(email));
    }
    let existing_account = match existing.first() {
        None => false,
        Some(m) if m.password_hash == NO_PASSWORD_YET => {
            return Err(AddMemberError::AwaitingPassword(email));
        }
        Some(_) => true,
    };
    let password_hash = match request.password {
        // The store would not use it; no need to spend the hashing.
        _ if existing_account => NO_PASSWORD_YET.to_string(),
        Some(password) => hash_off_thread(password)
            .await
            .map_err(AddMemberError::Store)?,
        None => NO_PASSWORD_YET.to_string(),
    };
    let member = store
        .create_member(
            org,
            NewMember {
                email: email.clone(),
                name,
                role: request.role.as_str().to_string(),
                password_hash,
                created_at: now,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AddMemberError::EmailTaken(email),
            other => AddMemberError::Store(other),
        })?;
    let event = activity::member_added(by.actor.clone(), by.context.clone(), &member, now);
    trail::record_by(store, org, event, &by)
        .await
        .map_err(AddMemberError::Store)?;
    Ok(Added {
        member,
        existing_account,
    })
}

/// [`hash_password`] on the blocking pool (it takes tens of milliseconds of CPU on purpose).
async fn hash_off_thread(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::Other(format!("hashing task: {e}")))?
}

/// Disables or enables a member (a disabled member cannot sign in, and their sessions stop
/// working) and records it (`member.disable` / `member.enable`). Changing nothing records nothing.
pub async fn set_disabled(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    disabled: bool,
    by: By,
    now: Millis,
) -> Result<Member, StoreError> {
    let current = store.member(org, id).await?.ok_or(StoreError::NotFound)?;
    if current.disabled == disabled {
        return Ok(current);
    }
    let update = MemberUpdate {
        disabled: Some(disabled),
        ..MemberUpdate::default()
    };
    let member = store.update_member(org, id, update).await?;
    let change = if disabled {
        activity::MemberChange::Disabled
    } else {
        activity::MemberChange::Enabled
    };
    let event =
        activity::member_changed(by.actor.clone(), by.context.clone(), &member, change, now);
    trail::record_by(store, org, event, &by).await?;
    Ok(member)
}

/// Changes a member's role and records it (`member.role_change`). The same role records nothing.
pub async fn change_role(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    role: Role,
    by: By,
    now: Millis,
) -> Result<Member, StoreError> {
    let current = store.member(org, id).await?.ok_or(StoreError::NotFound)?;
    if current.role == role.as_str() {
        return Ok(current);
    }
    let update = MemberUpdate {
        role: Some(role.as_str().to_string()),
        ..MemberUpdate::default()
    };
    let member = store.update_member(org, id, update).await?;
    let event = activity::member_role_changed(
        by.actor.clone(),
        by.context.clone(),
        &member,
        &current.role,
        now,
    );
    trail::record_by(store, org, event, &by).await?;
    Ok(member)
}

/// Removes a member (and their sessions) and records it (`member.remove`).
pub async fn remove(
    store: &dyn Store,
    org: OrgKey,
    id: &str,
    by: By,
    now: Millis,
) -> Result<Member, StoreError> {
    let member = store.remove_member(org, id).await?;
    let event = activity::member_changed(
        by.actor.clone(),
        by.context.clone(),
        &member,
        activity::MemberChange::Removed,
        now,
    );
    trail::record_by(store, org, event, &by).await?;
    Ok(member)
}

/// How long a password-set link works.
pub const PASSWORD_LINK_MS: Millis = 7 * 24 * 3600 * 1000;
/// Every password-set link's token starts with this.
pub const PASSWORD_LINK_PREFIX: &str = "psl_";

/// What a password-set link's token says. It is one-time without any table: it names a
/// fingerprint of the member's password hash as it was when the link was made, and setting a
/// password changes the hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasswordLinkClaims {
    pub org: i64,
    pub member: String,
    pub fingerprint: String,
    pub expires_at: Millis,
    /// Made by the operator (`stele user reset-password`), who may set the password of a person
    /// of several organizations; an organization's link works only while the person belongs to
    /// that organization alone. (Absent in links made before people had several organizations:
    /// those were all made for a person of one organization.)
    #[serde(default)]
    pub operator: bool,
}

/// Who makes a password link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkIssuer {
    /// The member's organization (its console or the API): only for a person of that
    /// organization alone.
    Organization,
    /// The operator, who runs the whole server anyway.
    Operator,
}

/// Why an organization may not make a password link for this member: the person belongs to
/// another organization too.
pub const SHARED_ACCOUNT: &str = "this person is also a member of another organization, so only \
     they (signed in) or the operator (`stele user reset-password`) can change their password";

/// Whether the person of `member` belongs to another organization too.
async fn in_other_organizations(store: &dyn Store, member: &Member) -> Result<bool, StoreError> {
    Ok(store
        .memberships_by_email(&member.email)
        .await?
        .iter()
        .any(|m| m.org != member.org))
}

fn fingerprint(password_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(password_hash.as_bytes())[..16])
}

/// A one-time link's token for `member` to set their password, and when it stops working. Making
/// one is recorded (`member.password_link`): whoever holds it can set the member's password.
/// `Conflict` ([`SHARED_ACCOUNT`]) when an organization asks for a person who also belongs to
/// another.
pub async fn password_link(
    store: &dyn Store,
    signer: &TokenSigner,
    member: &Member,
    issuer: LinkIssuer,
    by: By,
    now: Millis,
) -> Result<(String, Millis), StoreError> {
    if issuer == LinkIssuer::Organization && in_other_organizations(store, member).await? {
        return Err(StoreError::Conflict(SHARED_ACCOUNT.into()));
    }
    let claims = PasswordLinkClaims {
        org: member.org.get(),
        member: member.id.clone(),
        fingerprint: fingerprint(&member.password_hash),
        expires_at: now + PASSWORD_LINK_MS,
        operator: issuer == LinkIssuer::Operator,
    };
    let token = signer.sign_claims(PASSWORD_LINK_PREFIX, &claims);
    let event = activity::member_changed(
        by.actor.clone(),
        by.context.clone(),
        member,
        activity::MemberChange::PasswordLink,
        now,
    );
    trail::record_by(store, member.org, event, &by).await?;
    Ok((token, claims.expires_at))
}

/// Why a password-set link does not work (any more).
#[derive(Debug, thiserror::Error)]
pub enum PasswordLinkError {
    #[error("this link is not valid")]
    Invalid,
    #[error("this link has expired; ask for a new one")]
    Expired,
    #[error("this link was used already; ask for a new one")]
    Used,
    /// An organization's link, for a person who has since joined another organization too.
    #[error(
        "this link no longer works: your account now belongs to several organizations; ask \
         the operator of this Stele for a new one"
    )]
    SharedAccount,
    #[error("{0}")]
    BadPassword(String),
    #[error(transparent)]
    Store(StoreError),
}

/// The member a password-set link is for, if it still works at `now`.
pub async fn member_of_link(
    store: &dyn Store,
    signer: &TokenSigner,
    token: &str,
    now: Millis,
) -> Result<Member, PasswordLinkError> {
    let claims: PasswordLinkClaims = signer
        .verify_claims(PASSWORD_LINK_PREFIX, token)
        .map_err(|_| PasswordLinkError::Invalid)?;
    if now >= claims.expires_at {
        return Err(PasswordLinkError::Expired);
    }
    let member = store
        .member(OrgKey::new(claims.org), &claims.member)
        .await
        .map_err(PasswordLinkError::Store)?
        .ok_or(PasswordLinkError::Invalid)?;
    if fingerprint(&member.password_hash) != claims.fingerprint {
        return Err(PasswordLinkError::Used);
    }
    if !claims.operator
        && in_other_organizations(store, &member)
            .await
            .map_err(PasswordLinkError::Store)?
    {
        return Err(PasswordLinkError::SharedAccount);
    }
    Ok(member)
}

/// Sets the password of the person a link is for (ending their sessions in every organization),
/// which uses the link up, and records it (`member.password_set`) with the member as actor.
pub async fn set_password_with_link(
    store: &dyn Store,
    signer: &TokenSigner,
    token: &str,
    password: &str,
    context: Context,
    now: Millis,
) -> Result<Member, PasswordLinkError> {
    let member = member_of_link(store, signer, token, now).await?;
    check_password(password).map_err(PasswordLinkError::BadPassword)?;
    let hash = hash_off_thread(password)
        .await
        .map_err(PasswordLinkError::Store)?;
    let update = MemberUpdate {
        password_hash: Some(hash),
        ..MemberUpdate::default()
    };
    let member = store
        .update_member(member.org, &member.id, update)
        .await
        .map_err(PasswordLinkError::Store)?;
    let actor = activity::member_actor((&member).into());
    let event = activity::member_changed(
        actor,
        context,
        &member,
        activity::MemberChange::PasswordSet,
        now,
    );
    crate::trail::record(store, member.org, event)
        .await
        .map_err(PasswordLinkError::Store)?;
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_phc_strings_that_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(
            hash,
            hash_password("correct horse battery").unwrap(),
            "salted"
        );
    }

    #[test]
    fn short_passwords_and_odd_emails_are_refused() {
        assert!(check_password("elevenchars").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(
            check_password("ÄÖÜäöüßÄÖÜäö").is_ok(),
            "characters, not bytes"
        );
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert_eq!(check_email(" ada@example.com ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@", "a da@example.com"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
