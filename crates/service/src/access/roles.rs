//! Roles and permissions of the console. [`ROLE_PERMISSIONS`] is the one place that says which
//! role may do what; docs/console.md shows the same table (a test keeps them in step).
//!
//! API keys do not use this: they keep their scopes (`stele_store::Scope`).

use std::fmt;

use stele_store::Scope;

/// What a member may do. The names are the ones people see (`audit.log.view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read the audit log: the list, an entry's details, a record's history.
    AuditLogView,
    /// Download the log as CSV, JSON or NDJSON.
    AuditLogExport,
    /// Change the organization's settings: recording, retention, redaction, IP allowlist.
    AuditLogsConfigure,
    /// Create and revoke API keys.
    AuditKeysManage,
    /// Add members, change their roles, disable them.
    AuditMembersManage,
    /// Read the print log and its stats (Bambuddy's `ARCHIVES_READ`).
    PrintlogView,
    /// Classify one's own prints in the print log (docs/print-log.md).
    PrintlogUpdateOwn,
    /// Classify anyone's prints.
    PrintlogUpdateAll,
    /// Delete one's own prints from the print log.
    PrintlogDeleteOwn,
    /// Delete anyone's prints.
    PrintlogDeleteAll,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::AuditLogView,
        Permission::AuditLogExport,
        Permission::AuditLogsConfigure,
        Permission::AuditKeysManage,
        Permission::AuditMembersManage,
        Permission::PrintlogView,
        Permission::PrintlogUpdateOwn,
        Permission::PrintlogUpdateAll,
        Permission::PrintlogDeleteOwn,
        Permission::PrintlogDeleteAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::AuditLogView => "audit.log.view",
            Permission::AuditLogExport => "audit.log.export",
            Permission::AuditLogsConfigure => "audit.logs.configure",
            Permission::AuditKeysManage => "audit.keys.manage",
            Permission::AuditMembersManage => "audit.members.manage",
            Permission::PrintlogView => "printlog.view",
            Permission::PrintlogUpdateOwn => "printlog.update.own",
            Permission::PrintlogUpdateAll => "printlog.update.all",
            Permission::PrintlogDeleteOwn => "printlog.delete.own",
            Permission::PrintlogDeleteAll => "printlog.delete.all",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What it lets a member do, to finish "You don't have permission to …".
    pub fn describe(self) -> &'static str {
        match self {
            Permission::AuditLogView => "view the audit log",
            Permission::AuditLogExport => "export the audit log",
            Permission::AuditLogsConfigure => "configure the audit log",
            Permission::AuditKeysManage => "manage API keys",
            Permission::AuditMembersManage => "manage members",
            Permission::PrintlogView => "view the print log",
            Permission::PrintlogUpdateOwn => "update your own prints",
            Permission::PrintlogUpdateAll => "update every print",
            Permission::PrintlogDeleteOwn => "delete your own prints",
            Permission::PrintlogDeleteAll => "delete every print",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's role in their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    SuperAdmin,
    ItAdmin,
    Auditor,
    Member,
}

use Permission::*;

/// The table: each role and everything it may do. Nothing else grants a permission.
pub const ROLE_PERMISSIONS: [(Role, &[Permission]); 6] = [
    (Role::Owner, &Permission::ALL),
    (Role::Admin, &Permission::ALL),
    (Role::SuperAdmin, &Permission::ALL),
    (
        Role::ItAdmin,
        &[
            AuditLogView,
            AuditLogExport,
            AuditLogsConfigure,
            AuditKeysManage,
            PrintlogView,
        ],
    ),
    (Role::Auditor, &[AuditLogView, AuditLogExport, PrintlogView]),
    (
        Role::Member,
        &[PrintlogView, PrintlogUpdateOwn, PrintlogDeleteOwn],
    ),
];

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Admin,
        Role::SuperAdmin,
        Role::ItAdmin,
        Role::Auditor,
        Role::Member,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::SuperAdmin => "super-admin",
            Role::ItAdmin => "it-admin",
            Role::Auditor => "auditor",
            Role::Member => "member",
        }
    }

    /// Reads a role name (`owner`, `super-admin`, …), ignoring case and surrounding spaces.
    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim().to_ascii_lowercase();
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role names, for messages: `owner, admin, super-admin, it-admin, auditor, member`.
    pub fn names() -> String {
        Role::ALL.map(Role::as_str).join(", ")
    }

    pub fn permissions(self) -> &'static [Permission] {
        ROLE_PERMISSIONS
            .iter()
            .find(|(role, _)| *role == self)
            .map_or(&[], |(_, permissions)| permissions)
    }

    pub fn has(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// The first scope of `scopes` that this role may not give a key, with the permission it
    /// lacks (`None`: no member may give it): a member mints only keys that can do no more than
    /// the member may ([`scope_needs`]), so a key is never a way around a role.
    pub fn may_grant(self, scopes: &[Scope]) -> Result<(), (Scope, Option<Permission>)> {
        for scope in scopes {
            match scope_needs(*scope) {
                None => return Err((*scope, None)),
                Some(needs) => {
                    if let Some(missing) = needs.iter().find(|p| !self.has(**p)) {
                        return Err((*scope, Some(*missing)));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The permissions a member needs to give a key this scope: those of what the scope lets the key
/// do. `ingest` only adds entries, which a member who manages keys is trusted to hand to a
/// service; `admin` lets a key change settings, keys and members and run erasure, so only a role
/// with every audit-log permission may give it. `None` for `organizations`, a platform key's
/// scope, which no member of an organization may give.
pub fn scope_needs(scope: Scope) -> Option<&'static [Permission]> {
    Some(match scope {
        Scope::Ingest => &[AuditKeysManage],
        Scope::Read => &[AuditLogView],
        Scope::Export => &[AuditLogView, AuditLogExport],
        Scope::Admin => &[
            AuditLogView,
            AuditLogExport,
            AuditLogsConfigure,
            AuditKeysManage,
            AuditMembersManage,
        ],
        Scope::Viewer => &[AuditLogView, AuditLogExport],
        Scope::PrintlogUpdateOwn => &[PrintlogUpdateOwn],
        Scope::PrintlogUpdateAll => &[PrintlogUpdateAll],
        Scope::PrintlogDeleteOwn => &[PrintlogDeleteOwn],
        Scope::PrintlogDeleteAll => &[PrintlogDeleteAll],
        Scope::Organizations => return None,
    })
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every permission of the audit log (not the print log's).
    const AUDIT: [Permission; 5] = [
        AuditLogView,
        AuditLogExport,
        AuditLogsConfigure,
        AuditKeysManage,
        AuditMembersManage,
    ];

    #[test]
    fn every_role_is_in_the_table_once() {
        for role in Role::ALL {
            let rows = ROLE_PERMISSIONS.iter().filter(|(r, _)| *r == role).count();
            assert_eq!(rows, 1, "{role}");
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse(" Super-Admin "), Some(Role::SuperAdmin));
        assert_eq!(Role::parse("root"), None);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn the_table_grants_what_the_issue_says() {
        for role in [Role::Owner, Role::Admin, Role::SuperAdmin] {
            assert!(Permission::ALL.iter().all(|p| role.has(*p)), "{role}");
        }
        let audit = |role: Role| -> Vec<&str> {
            AUDIT
                .iter()
                .filter(|p| role.has(**p))
                .map(|p| p.as_str())
                .collect()
        };
        assert_eq!(
            audit(Role::ItAdmin),
            [
                "audit.log.view",
                "audit.log.export",
                "audit.logs.configure",
                "audit.keys.manage"
            ]
        );
        assert_eq!(audit(Role::Auditor), ["audit.log.view", "audit.log.export"]);
        assert!(audit(Role::Member).is_empty());
        assert!(Role::Member.has(PrintlogUpdateOwn) && Role::Member.has(PrintlogDeleteOwn));
        assert!(!Role::Member.has(PrintlogUpdateAll) && !Role::Member.has(PrintlogDeleteAll));
    }

    /// docs/console.md shows the table as Markdown, one row per permission and a ✓ per role
    /// that has it; this test fails when the code and the page disagree.
    #[test]
    fn docs_console_md_shows_this_table() {
        let docs = include_str!("../../../../docs/console.md");
        let mut expected = String::from("| permission | lets a member |");
        for role in Role::ALL {
            expected += &format!(" `{role}` |");
        }
        expected += "\n|---|---|";
        expected += &"---|".repeat(Role::ALL.len());
        for p in Permission::ALL {
            expected += &format!("\n| `{p}` | {} |", p.describe());
            for role in Role::ALL {
                expected += if role.has(p) { " ✓ |" } else { "  |" };
            }
        }
        assert!(
            docs.contains(&expected),
            "docs/console.md should contain this roles table:\n\n{expected}\n"
        );
    }

    #[test]
    fn a_member_gives_a_key_no_more_than_their_role_may_do() {
        // The it-admin manages keys but not members, nor erasure: no admin key.
        assert_eq!(
            Role::ItAdmin.may_grant(&[Scope::Ingest, Scope::Read, Scope::Export]),
            Ok(())
        );
        assert_eq!(
            Role::ItAdmin.may_grant(&[Scope::Read, Scope::Admin]),
            Err((Scope::Admin, Some(Permission::AuditMembersManage)))
        );
        assert_eq!(
            Role::ItAdmin.may_grant(&[Scope::PrintlogDeleteAll]),
            Err((
                Scope::PrintlogDeleteAll,
                Some(Permission::PrintlogDeleteAll)
            ))
        );
        assert_eq!(Role::Admin.may_grant(&Scope::FOR_ORGANIZATION), Ok(()));
        assert_eq!(
            Role::Owner.may_grant(&[Scope::Organizations]),
            Err((Scope::Organizations, None))
        );
        // Every scope an organization's key may hold is given by some role.
        for scope in Scope::FOR_ORGANIZATION {
            assert!(scope_needs(scope).is_some(), "{scope:?}");
        }
    }
}
