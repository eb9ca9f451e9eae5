//! `stele user`: add a console member (with a password read without echo), disable, enable or
//! remove one, or print a one-time link for them to set a new password. Each is
//! `stele_service::access::members`'s, as over the API, and recorded the same way.
//!
//! An email that is already a person's (a member of another organization) is added to this
//! organization without asking for a password: they sign in with the one they have.

use anyhow::Context as _;
use stele_core::time::now_millis;
use stele_service::trail::{By, activity};

use super::open::{find_org, open_existing};
use crate::DataDir;

pub(crate) async fn create_user(
    org: String,
    email: String,
    role: String,
    name: Option<String>,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::access::members::{self, AddMember};
    use stele_service::access::roles::Role;
    let role = Role::parse(&role).ok_or_else(|| {
        anyhow::anyhow!(
            "--role: unknown role `{role}`; use one of {}",
            Role::names()
        )
    })?;
    members::check_email(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), &org).await?;
    let password = if members::has_account(store.as_ref(), &email).await? {
        None
    } else {
        let password = read_new_password()?;
        members::check_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
        Some(password)
    };
    let added = members::add(
        store.as_ref(),
        org.key,
        AddMember {
            email: &email,
            name: name.as_deref(),
            role,
            password: password.as_deref(),
        },
        by("stele user create"),
        now_millis(),
    )
    .await?;
    let member = added.member;
    if added.existing_account {
        eprintln!(
            "added {} to {} as {}; they already have an account in another organization and \
             sign in at /console with their own password",
            member.email, org.name, member.role
        );
    } else {
        eprintln!(
            "added {} to {} as {}; they can sign in at /console",
            member.email, org.name, member.role
        );
    }
    println!("{}", member.id);
    Ok(())
}

/// A new password: prompted twice without echo on a terminal, else the first line of standard
/// input (for scripts: `printf '%s\n' "$PASSWORD" | stele user create …`).
pub(crate) fn read_new_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")
            .context("reading the password")?;
        stele_service::access::members::check_password(&first)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let second =
            rpassword::prompt_password("Repeat the password: ").context("reading the password")?;
        anyhow::ensure!(
            first == second,
            "the two passwords differ; nothing was changed"
        );
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "no password on standard input (give it as the first line, or run on a terminal to be \
         prompted)"
    );
    Ok(password.to_string())
}

/// The organization's member with this email.
async fn find_member(
    store: &dyn stele_store::Store,
    org: &str,
    email: &str,
) -> anyhow::Result<stele_store::Member> {
    let org = find_org(store, org).await?;
    store
        .memberships_by_email(email)
        .await?
        .into_iter()
        .find(|m| m.org == org.key)
        .ok_or_else(|| anyhow::anyhow!("{} has no member with the email {email}", org.name))
}

/// The operator's doing: recorded in the organization's trail and in the platform's.
fn by(command: &str) -> By {
    By::platform(activity::system_actor(command), activity::cli_context())
}

pub(crate) async fn set_disabled(
    org: String,
    email: String,
    disabled: bool,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::access::members;
    let store = open_existing(&data).await?;
    let member = find_member(store.as_ref(), &org, &email).await?;
    let command = if disabled {
        "stele user disable"
    } else {
        "stele user enable"
    };
    let member = members::set_disabled(
        store.as_ref(),
        member.org,
        &member.id,
        disabled,
        by(command),
        now_millis(),
    )
    .await?;
    let state = if member.disabled {
        "disabled"
    } else {
        "enabled"
    };
    eprintln!("{} in {} is {state}", member.email, member.org_name);
    Ok(())
}

pub(crate) async fn remove(org: String, email: String, data: DataDir) -> anyhow::Result<()> {
    use stele_service::access::members;
    let store = open_existing(&data).await?;
    let member = find_member(store.as_ref(), &org, &email).await?;
    let member = members::remove(
        store.as_ref(),
        member.org,
        &member.id,
        by("stele user remove"),
        now_millis(),
    )
    .await?;
    eprintln!("removed {} from {}", member.email, member.org_name);
    Ok(())
}

pub(crate) async fn reset_password(
    org: String,
    email: String,
    public_url: Option<String>,
    key_path: std::path::PathBuf,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::access::members;
    use stele_service::secrets::TokenSigner;
    let key = stele_service::secrets::load_signing_key(&key_path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no signing key at {} (the server's; --signing-key-file names another)",
            key_path.display()
        )
    })?;
    let signer = TokenSigner::new(stele_service::secrets::password_link_secret(&key));
    let store = open_existing(&data).await?;
    let member = find_member(store.as_ref(), &org, &email).await?;
    // The operator may reset the password of a person of several organizations (an
    // organization may not; see `stele_service::access::members`).
    let (token, _) = members::password_link(
        store.as_ref(),
        &signer,
        &member,
        members::LinkIssuer::Operator,
        by("stele user reset-password"),
        now_millis(),
    )
    .await?;
    let base = public_url.as_deref().unwrap_or("").trim_end_matches('/');
    eprintln!(
        "a one-time link for {} to set a new password (valid 7 days):",
        member.email
    );
    println!("{base}/console/set-password?token={token}");
    Ok(())
}
