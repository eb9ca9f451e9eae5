//! How the vocabularies of WorkOS and Retraced map onto Stele's event model, where a rule is
//! needed at all (docs/platforms.md, "What maps to what"). Both doors use these, so an action
//! sent through either is filed under the same general action.

use stele_core::ActorType;

/// The general action of a dotted, specific one (`user.signed_in` → `login`,
/// `document.updated` → `update`): its last segment, read as a verb Stele knows where it is one,
/// else that segment itself as a lowercase word (`invoice.paid` → `paid`), so a filter on the
/// general action finds every kind of sign-in or deletion whatever the sender called it.
pub fn general_action(dotted: &str) -> String {
    let last = dotted
        .rsplit(['.', ':', '/'])
        .next()
        .unwrap_or(dotted)
        .to_ascii_lowercase()
        .replace('-', "_");
    let known = match last.as_str() {
        "create" | "created" | "add" | "added" | "new" | "insert" | "inserted" => "create",
        "update" | "updated" | "change" | "changed" | "edit" | "edited" | "modify" | "modified"
        | "rename" | "renamed" => "update",
        "delete" | "deleted" | "remove" | "removed" | "destroy" | "destroyed" => "delete",
        "signed_in" | "sign_in" | "signin" | "logged_in" | "log_in" | "login" => "login",
        "signed_out" | "sign_out" | "signout" | "logged_out" | "log_out" | "logout" => "logout",
        "sign_in_failed" | "login_failed" | "failed_login" | "failed_sign_in" => "login_failed",
        "read" | "view" | "viewed" | "get" | "accessed" | "access" | "opened" => "view",
        "export" | "exported" | "download" | "downloaded" => "export",
        "import" | "imported" | "upload" | "uploaded" => "import",
        "archive" | "archived" => "archive",
        "restore" | "restored" | "unarchived" => "restore",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    // Any other last segment, made a word of Stele's action rule (`[a-z][a-z0-9_]*`, at most 64).
    let word: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(64)
        .collect();
    match word.chars().next() {
        Some(c) if c.is_ascii_lowercase() => word,
        _ => "other".to_string(),
    }
}

/// The Stele actor type of a free-text one (WorkOS's `actor.type`): Stele's own names as they
/// are, the usual names of machine actors as `api`, `scheduler` or `system`, anything else (a
/// role, a kind of person) as `user`. The text as sent is kept beside it
/// (`actor.original_type`).
pub fn actor_type(free_text: &str) -> ActorType {
    let t = free_text
        .trim()
        .to_ascii_lowercase()
        .replace(['-', ' '], "_");
    if let Ok(kind) = t.parse::<ActorType>() {
        return kind;
    }
    match t.as_str() {
        "api_key" | "apikey" | "service" | "service_account" | "application" | "app" | "bot"
        | "integration" | "client" | "machine" | "token" => ActorType::Api,
        "cron" | "job" | "scheduled_job" | "schedule" | "task" | "worker" => ActorType::Scheduler,
        "internal" | "platform" | "automation" => ActorType::System,
        "hook" => ActorType::Webhook,
        _ => ActorType::User,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_actions_have_a_general_action() {
        for (dotted, general) in [
            ("user.signed_in", "login"),
            ("user.signed_out", "logout"),
            ("document.update", "update"),
            ("document.updated", "update"),
            ("team.deleted", "delete"),
            ("user.sign_in_failed", "login_failed"),
            ("report.exported", "export"),
            ("invoice.paid", "paid"),
            ("Invoice.Paid-Late", "paid_late"),
            ("user.2fa", "other"),
            ("login", "login"),
        ] {
            assert_eq!(general_action(dotted), general, "{dotted}");
        }
    }

    #[test]
    fn free_text_actor_types_map_onto_stele_s_five() {
        for (free, kind) in [
            ("user", ActorType::User),
            ("USER", ActorType::User),
            ("admin", ActorType::User),
            ("service account", ActorType::Api),
            ("api_key", ActorType::Api),
            ("cron", ActorType::Scheduler),
            ("system", ActorType::System),
            ("webhook", ActorType::Webhook),
        ] {
            assert_eq!(actor_type(free), kind, "{free}");
        }
    }
}
