//! `stele user create`: add a console member, with a password read without echo.

use anyhow::Context as _;
use stele_core::time::now_millis;
use stele_service::trail::activity;

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
    let password = read_new_password()?;
    members::check_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let member = members::add(
        store.as_ref(),
        org.key,
        AddMember {
            email: &email,
            name: name.as_deref(),
            role,
            password: &password,
        },
        activity::system_actor("stele user create"),
        activity::cli_context(),
        now_millis(),
    )
    .await?;
    eprintln!(
        "added {} to {} as {}; they can sign in at /console",
        member.email, org.name, member.role
    );
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
