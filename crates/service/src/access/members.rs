//! Console members: their passwords (Argon2id, the `argon2` crate's default parameters, stored as
//! PHC strings) and adding one, which is recorded in the organization's trail. `stele user
//! create` uses this today, the console's members page later.
//!
//! Hashing and verifying take tens of milliseconds of CPU on purpose; async callers run them on
//! the blocking pool.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use stele_core::event::{Actor, Context};
use stele_core::time::Millis;
use stele_store::{Member, NewMember, OrgKey, Store, StoreError};

use crate::access::roles::Role;
use crate::random;
use crate::trail::activity;

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
    /// Another member has this email (in any organization).
    #[error("a member with the email `{0}` already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Store(StoreError),
}

/// A member to add, as an administrator gives it.
pub struct AddMember<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: Role,
    pub password: &'a str,
}

/// Adds a member to the organization and records it (`member.add`, channel `security`) with
/// `by` as the actor: a System actor from the command line, the member who did it from the
/// console.
pub async fn add(
    store: &dyn Store,
    org: OrgKey,
    request: AddMember<'_>,
    by: Actor,
    context: Context,
    now: Millis,
) -> Result<Member, AddMemberError> {
    let email = check_email(request.email).map_err(AddMemberError::Invalid)?;
    check_password(request.password).map_err(AddMemberError::Invalid)?;
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
    let password = request.password.to_string();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AddMemberError::Store(StoreError::Other(format!("hashing task: {e}"))))?
        .map_err(AddMemberError::Store)?;
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
    let event = activity::member_added(by, context, &member, now);
    crate::trail::record(store, org, event)
        .await
        .map_err(AddMemberError::Store)?;
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
