//! The reference event generator: deterministic (xorshift, `--seed`). A pool of distinct events is
//! serialized once, cut at the values that change per sent event ([`Template`]); the
//! [`Assembler`] splices a fresh `occurred_at`, correlation id, request id and entity number in.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use stele_core::time::{format_rfc3339, now_millis};

use crate::POOL_SIZE;

/// xorshift64*, seeded through splitmix64.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// In `0..n`, skewed towards small values (a few hot items, a long tail).
    fn skewed(&mut self, n: u64, power: f64) -> u64 {
        ((n as f64 * self.unit().powf(power)) as u64).min(n - 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| *w as u64).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < *w as u64 {
                return item;
            }
            x -= *w as u64;
        }
        &items[items.len() - 1].0
    }
}

/// splitmix64's finalizer: a good 64-bit hash.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) const ACTIONS: &[(&str, u32)] = &[
    ("view", 28),
    ("update", 24),
    ("create", 12),
    ("login", 13),
    ("logout", 7),
    ("login_failed", 3),
    ("delete", 4),
    ("export", 3),
    ("bulk_update", 4),
];

/// (action, detailed action, entity type, weight within the action).
type Detailed = (&'static str, &'static str, &'static str, u32);
const DETAILED: &[Detailed] = &[
    ("create", "user.invite", "user", 3),
    ("create", "printer.add", "printer", 2),
    ("create", "printJob.create", "printJob", 10),
    ("create", "document.upload", "document", 6),
    ("create", "apiKey.create", "apiKey", 1),
    ("create", "webhook.create", "webhook", 1),
    ("create", "project.create", "project", 2),
    ("create", "invoice.create", "invoice", 3),
    ("create", "team.create", "team", 1),
    ("create", "device.register", "device", 2),
    ("update", "printer.rename", "printer", 2),
    ("update", "printJob.retry", "printJob", 6),
    ("update", "printJob.cancel", "printJob", 4),
    ("update", "user.role_change", "user", 2),
    ("update", "settings.update", "settings", 3),
    ("update", "license_reset", "license", 1),
    ("update", "document.edit", "document", 6),
    ("update", "billing.plan_change", "subscription", 1),
    ("update", "project.rename", "project", 1),
    ("update", "user.profile_update", "user", 4),
    ("update", "printer.firmware_update", "printer", 1),
    ("update", "ticket.close", "ticket", 3),
    ("update", "location.update", "location", 1),
    ("update", "folder.share", "folder", 2),
    ("update", "role.assign", "role", 1),
    ("delete", "user.remove", "user", 1),
    ("delete", "document.delete", "document", 4),
    ("delete", "printer.remove", "printer", 1),
    ("delete", "apiKey.revoke", "apiKey", 1),
    ("delete", "project.archive", "project", 1),
    ("delete", "comment.delete", "comment", 3),
    ("bulk_update", "printJob.bulk_cancel", "printJob", 3),
    ("bulk_update", "user.bulk_disable", "user", 1),
    ("bulk_update", "document.bulk_move", "document", 2),
    ("bulk_update", "printer.bulk_reassign", "printer", 1),
    ("login", "session.password", "session", 5),
    ("login", "session.sso", "session", 4),
    ("login", "session.mfa", "session", 2),
    ("logout", "session.end", "session", 5),
    ("logout", "session.timeout", "session", 3),
    ("login_failed", "session.bad_password", "session", 5),
    ("login_failed", "session.mfa_failed", "session", 2),
    ("login_failed", "session.locked", "session", 1),
    ("view", "document.view", "document", 10),
    ("view", "report.view", "report", 5),
    ("view", "user.view", "user", 3),
    ("view", "pii.view_ssn", "user", 1),
    ("view", "audit.view", "report", 1),
    ("view", "ticket.view", "ticket", 3),
    ("view", "comment.view", "comment", 2),
    ("export", "report.export", "report", 3),
    ("export", "user.export_csv", "user", 1),
    ("export", "audit.export", "report", 1),
];

/// (entity type, id prefix, how many ids): about 200k entity ids in all.
const ENTITY_TYPES: &[(&str, &str, u64)] = &[
    ("user", "usr", 20_000),
    ("printer", "prn", 5_000),
    ("printJob", "pjb", 60_000),
    ("document", "doc", 40_000),
    ("invoice", "inv", 15_000),
    ("project", "prj", 3_000),
    ("apiKey", "key", 500),
    ("webhook", "whk", 300),
    ("license", "lic", 2_000),
    ("settings", "cfg", 200),
    ("report", "rpt", 5_000),
    ("team", "tem", 800),
    ("role", "rol", 60),
    ("session", "ses", 20_000),
    ("device", "dev", 6_000),
    ("location", "loc", 400),
    ("subscription", "sub", 3_000),
    ("folder", "fld", 4_000),
    ("comment", "cmt", 12_000),
    ("ticket", "tkt", 8_000),
];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Carla", "Diego", "Emil", "Fatima", "Gustav",
    "Hana", "Ivan", "Julia", "Kofi", "Lucia", "Mateo", "Nora",
];
const LAST_NAMES: &[&str] = &[
    "Abbott",
    "Berger",
    "Castro",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yamamoto",
    "Zimmer",
    "Alvarez",
    "Brandt",
    "Costa",
    "Dalton",
    "Engel",
    "Ferreira",
    "Gomez",
    "Huber",
    "Iqbal",
    "Jovanovic",
    "Keller",
    "Lindqvist",
    "Meyer",
    "Novak",
    "Okafor",
    "Perez",
    "Richter",
    "Silva",
    "Torres",
];
const DOMAINS: &[&str] = &[
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
];
const SERVICES: &[&str] = &[
    "billing-sync",
    "crm-bridge",
    "ci-deploy",
    "warehouse-etl",
    "support-desk",
    "hr-import",
    "print-fleet",
    "sso-provisioner",
    "backup-agent",
    "analytics",
];
const SYSTEM_ACTORS: &[&str] = &[
    "retention",
    "indexer",
    "billing",
    "backup",
    "mailer",
    "scheduler",
    "license-check",
    "quota",
    "firmware",
    "cleanup",
];
const WEBHOOK_PROVIDERS: &[&str] = &["Stripe", "GitHub", "Okta", "Slack", "Zendesk"];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "PrintFleet-Desktop/5.2.1 (Windows 11)",
];
const API_AGENTS: &[&str] = &[
    "stele-sdk-python/2.3.1",
    "stele-sdk-go/1.8.0",
    "stele-sdk-node/3.0.2",
];

/// Description vocabulary, most common first (picked with a skew towards the front).
pub(crate) const VOCAB: &[&str] = &[
    "request",
    "account",
    "queue",
    "policy",
    "access",
    "settings",
    "network",
    "billing",
    "review",
    "default",
    "tray",
    "paper",
    "toner",
    "quota",
    "workspace",
    "member",
    "invoice",
    "customer",
    "support",
    "manual",
    "automatic",
    "scheduled",
    "retry",
    "timeout",
    "limit",
    "changed",
    "approved",
    "pending",
    "after",
    "before",
    "during",
    "because",
    "via",
    "portal",
    "mobile",
    "desktop",
    "office",
    "floor",
    "branch",
    "region",
    "primary",
    "secondary",
    "backup",
    "color",
    "mono",
    "duplex",
    "staple",
    "finisher",
    "driver",
    "firmware",
    "certificate",
    "password",
    "token",
    "role",
    "group",
    "team",
    "folder",
    "share",
    "link",
    "external",
    "internal",
    "guest",
    "admin",
    "owner",
    "viewer",
    "editor",
    "audit",
    "compliance",
    "export",
    "import",
    "sync",
    "webhook",
    "integration",
    "license",
    "seat",
    "renewal",
    "trial",
    "upgrade",
    "downgrade",
    "refund",
    "credit",
    "charge",
    "receipt",
    "ticket",
    "escalated",
    "resolved",
    "reopened",
    "comment",
    "mention",
    "draft",
    "published",
    "archived",
    "restored",
    "deleted",
    "moved",
    "copied",
    "renamed",
    "tagged",
    "flagged",
    "locked",
    "unlocked",
    "expired",
    "rotated",
    "verified",
    "invited",
    "joined",
    "removed",
    "suspended",
    "reactivated",
    "warning",
    "error",
    "notice",
    "jam",
    "offline",
    "online",
    "maintenance",
    "calibration",
    "nightly",
    "weekly",
    "monthly",
    "quarterly",
    "migration",
    "cleanup",
];
/// The top of [`VOCAB`] used for the common-word search.
pub(crate) const COMMON_WORDS: usize = 5;
/// Each appears in about 0.01% of events, for the rare-substring search.
pub(crate) const RARE_TOKENS: &[&str] = &["subpoena", "quarantined", "exfiltration", "tribunal"];

const CHANGE_FIELDS: &[&str] = &[
    "status",
    "role",
    "name",
    "copies",
    "duplex",
    "paper_size",
    "color_mode",
    "tray",
    "priority",
    "quota",
    "plan",
    "seats",
    "timezone",
    "locale",
    "owner",
    "title",
    "due_date",
    "location",
    "email",
    "tags",
];

fn change_value(rng: &mut Rng, field: &str) -> Value {
    let one = |rng: &mut Rng, items: &[&str]| Value::from(*rng.pick(items));
    match field {
        "status" => one(
            rng,
            &["active", "suspended", "pending", "archived", "failed"],
        ),
        "role" => one(rng, &["viewer", "editor", "admin", "owner", "billing"]),
        "name" | "title" => Value::from(format!(
            "{} {} {}",
            VOCAB[rng.skewed(VOCAB.len() as u64, 2.0) as usize],
            VOCAB[rng.below(VOCAB.len() as u64) as usize],
            rng.range(1, 999)
        )),
        "copies" | "seats" | "quota" => Value::from(rng.range(1, 500)),
        "tray" => Value::from(rng.range(1, 4)),
        "duplex" => Value::from(rng.chance(0.5)),
        "paper_size" => one(rng, &["A4", "Letter", "A3", "Legal"]),
        "color_mode" => one(rng, &["mono", "color", "auto"]),
        "priority" => one(rng, &["low", "normal", "high", "urgent"]),
        "plan" => one(rng, &["free", "team", "business", "enterprise"]),
        "timezone" => one(
            rng,
            &[
                "Europe/Berlin",
                "America/New_York",
                "Asia/Tokyo",
                "UTC",
                "America/Sao_Paulo",
            ],
        ),
        "locale" => one(rng, &["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"]),
        "owner" => Value::from(format!("usr_{:05}", rng.below(20_000))),
        "due_date" => Value::from(format!(
            "2026-{:02}-{:02}",
            rng.range(1, 12),
            rng.range(1, 28)
        )),
        "location" => Value::from(format!("loc_{}", rng.below(400))),
        "email" => {
            let u = rng.below(2000) as usize;
            Value::from(person(u).2)
        }
        _ => Value::from(format!(
            "{},{}",
            VOCAB[rng.below(VOCAB.len() as u64) as usize],
            VOCAB[rng.below(VOCAB.len() as u64) as usize]
        )),
    }
}

/// (id, name, email) of the `n`th of 1,800 user actors.
fn person(n: usize) -> (String, String, String) {
    let first = FIRST_NAMES[n % FIRST_NAMES.len()];
    let last = LAST_NAMES[(n / FIRST_NAMES.len()) % LAST_NAMES.len()];
    (
        format!("usr_{n:05}"),
        format!("{first} {last}"),
        format!(
            "{}.{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            DOMAINS[n % DOMAINS.len()]
        ),
    )
}

fn ip_address(n: u64) -> String {
    match n % 10 {
        9 => format!("2001:db8::{:x}", n + 1),
        7 => format!("203.0.113.{}", n % 250 + 1),
        8 => format!("198.51.100.{}", n % 250 + 1),
        _ => format!("10.{}.{}.{}", n / 100, n % 100, (n * 37) % 250 + 1),
    }
}

/// Where an event's spliced values go.
#[derive(Clone, Copy)]
enum Slot {
    Time,
    Correlation,
    Request,
    /// The entity number (the same in every place of one event).
    Entity,
}

/// A serialized event cut at its slots: `parts[0] slot[0] parts[1] … parts[n]`.
pub(crate) struct Template {
    parts: Vec<String>,
    slots: Vec<Slot>,
    entity_space: u64,
}

pub(crate) struct Pool {
    templates: Vec<Template>,
    pub(crate) average_bytes: f64,
}

impl Pool {
    pub(crate) fn generate(seed: u64) -> Pool {
        let mut rng = Rng::new(seed);
        let templates: Vec<Template> = (0..POOL_SIZE)
            .map(|j| reference_event(&mut rng, j))
            .collect();
        let mut assembler = Assembler::new(seed ^ 0xa11);
        let mut body = String::new();
        let now = now_millis();
        for t in &templates {
            assembler.write(&mut body, t, now);
        }
        Pool {
            average_bytes: body.len() as f64 / templates.len() as f64,
            templates,
        }
    }

    pub(crate) fn pick(&self, hash: u64) -> &Template {
        &self.templates[(hash % self.templates.len() as u64) as usize]
    }
}

/// Fills a template's slots. Correlation ids come in groups of 1 to 5 consecutive uses.
pub(crate) struct Assembler {
    pub(crate) rng: Rng,
    correlation: String,
    correlation_left: u64,
}

impl Assembler {
    pub(crate) fn new(seed: u64) -> Assembler {
        Assembler {
            rng: Rng::new(seed),
            correlation: String::new(),
            correlation_left: 0,
        }
    }

    pub(crate) fn write(&mut self, out: &mut String, t: &Template, occurred_ms: i64) {
        let entity = t.entity_space.max(1);
        let entity = self.rng.skewed(entity, 1.5);
        for (i, part) in t.parts.iter().enumerate() {
            out.push_str(part);
            let Some(slot) = t.slots.get(i) else { break };
            match slot {
                Slot::Time => out.push_str(&format_rfc3339(occurred_ms)),
                Slot::Correlation => {
                    if self.correlation_left == 0 {
                        self.correlation_left = self.rng.range(1, 5);
                        self.correlation.clear();
                        let _ = write!(self.correlation, "corr_{:016x}", self.rng.next());
                    }
                    self.correlation_left -= 1;
                    out.push_str(&self.correlation);
                }
                Slot::Request => {
                    let _ = write!(out, "req_{:016x}", self.rng.next());
                }
                Slot::Entity => {
                    let _ = write!(out, "{entity}");
                }
            }
        }
    }
}

fn split_template(json: &str, entity_space: u64) -> Template {
    let mut parts = Vec::new();
    let mut slots = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find("@@") {
        let slot = match &rest[at..at + 5] {
            "@@T@@" => Slot::Time,
            "@@C@@" => Slot::Correlation,
            "@@R@@" => Slot::Request,
            "@@E@@" => Slot::Entity,
            other => unreachable!("unknown slot marker {other}"),
        };
        parts.push(rest[..at].to_string());
        slots.push(slot);
        rest = &rest[at + 5..];
    }
    parts.push(rest.to_string());
    Template {
        parts,
        slots,
        entity_space,
    }
}

/// The `j`th pooled reference event.
fn reference_event(rng: &mut Rng, j: usize) -> Template {
    let action = *rng.weighted(ACTIONS);
    let choices: Vec<(&Detailed, u32)> = DETAILED
        .iter()
        .filter(|d| d.0 == action)
        .map(|d| (d, d.3))
        .collect();
    let (_, detailed, mut entity_type, _) = **rng.weighted(&choices);
    // About 8% of events name no detailed action; their entity is any type.
    let detailed = if rng.chance(0.08) {
        entity_type = rng.pick(ENTITY_TYPES).0;
        None
    } else {
        Some(detailed)
    };
    let (_, prefix, space) = *ENTITY_TYPES
        .iter()
        .find(|t| t.0 == entity_type)
        .expect("every detailed action names a known entity type");
    let auth = matches!(action, "login" | "logout" | "login_failed");

    // The actor: ~2,000 of them, a few very busy.
    let actor_type = if auth {
        "user"
    } else {
        *rng.weighted(&[
            ("user", 70),
            ("api", 17),
            ("system", 12),
            ("webhook", 1),
            ("scheduler", 1),
        ])
    };
    let mut actor = Map::new();
    actor.insert("type".into(), actor_type.into());
    let mut user_agent = None;
    let source;
    match actor_type {
        "user" => {
            let (id, name, email) = person(rng.skewed(1800, 1.6) as usize);
            actor.insert("id".into(), id.into());
            if rng.chance(0.7) {
                actor.insert("name".into(), name.into());
            }
            actor.insert("email".into(), email.into());
            // Browsers' user agents are long; most integrations record them on sign-ins only.
            if rng.chance(if auth { 0.4 } else { 0.05 }) {
                user_agent = Some(*rng.pick(USER_AGENTS));
            }
            source = if rng.chance(0.85) { "web" } else { "cli" };
        }
        "api" => {
            let n = rng.skewed(150, 1.5) as usize;
            actor.insert("id".into(), format!("key_{n:04}").into());
            actor.insert(
                "name".into(),
                format!("{} integration", SERVICES[n % SERVICES.len()]).into(),
            );
            user_agent = Some(*rng.pick(API_AGENTS));
            source = "api";
        }
        "system" => {
            let n = rng.below(SYSTEM_ACTORS.len() as u64) as usize;
            actor.insert("id".into(), format!("sys_{}", SYSTEM_ACTORS[n]).into());
            actor.insert("name".into(), format!("Stele {}", SYSTEM_ACTORS[n]).into());
            source = "system";
        }
        "webhook" => {
            let n = rng.below(20) as usize;
            actor.insert("id".into(), format!("whk_{n:03}").into());
            actor.insert(
                "name".into(),
                format!("{} webhook", WEBHOOK_PROVIDERS[n % WEBHOOK_PROVIDERS.len()]).into(),
            );
            source = "webhook";
        }
        _ => {
            let n = rng.below(20);
            actor.insert("id".into(), format!("cron_{n:02}").into());
            actor.insert("name".into(), format!("nightly job {n}").into());
            source = "scheduler";
        }
    }

    let channel = if rng.chance(0.01) {
        "compliance"
    } else if auth {
        if rng.chance(0.85) { "auth" } else { "security" }
    } else if detailed.is_some_and(|d| d.starts_with("pii.")) {
        "pii-read"
    } else if matches!(entity_type, "printer" | "printJob" | "device") {
        "hardware"
    } else if detailed
        .is_some_and(|d| d.starts_with("apiKey.") || d == "role.assign" || d == "user.role_change")
    {
        "security"
    } else {
        "default"
    };
    let outcome = if action == "login_failed" || rng.chance(0.03) {
        "failure"
    } else {
        "success"
    };

    // The entity, or for bulk actions its type and 5 to 20 ids.
    let bulk = action == "bulk_update";
    let mut entity = Map::new();
    entity.insert("type".into(), entity_type.into());
    let mut entity_ids = Vec::new();
    if bulk {
        for _ in 0..rng.range(5, 20) {
            entity_ids.push(Value::from(format!("{prefix}_{}", rng.skewed(space, 1.5))));
        }
    } else {
        entity.insert("id".into(), format!("{prefix}_@@E@@").into());
        if rng.chance(0.3) {
            entity.insert(
                "name".into(),
                format!("{} {}-@@E@@", entity_type, VOCAB[rng.below(40) as usize]).into(),
            );
        }
    }

    let verb = match action {
        "create" => "Created",
        "update" => "Updated",
        "delete" => "Deleted",
        "bulk_update" => "Bulk-updated",
        "login" => "Signed in to",
        "logout" => "Signed out of",
        "login_failed" => "Failed sign-in to",
        "view" => "Viewed",
        _ => "Exported",
    };
    let mut description = if bulk {
        format!("{verb} {} {entity_type} records:", entity_ids.len())
    } else {
        format!("{verb} {entity_type} {prefix}_@@E@@:")
    };
    let words = rng.range(2, 5);
    let rare = matches!(j % 2500, 0).then(|| RARE_TOKENS[(j / 2500) % RARE_TOKENS.len()]);
    let rare_at = rng.below(words);
    for w in 0..words {
        if w == rare_at
            && let Some(token) = rare
        {
            description.push(' ');
            description.push_str(token);
        }
        description.push(' ');
        description.push_str(VOCAB[rng.skewed(VOCAB.len() as u64, 2.0) as usize]);
    }

    let mut context = Map::new();
    if rng.chance(0.97) {
        context.insert("ip".into(), ip_address(rng.skewed(1000, 1.3)).into());
    }
    if let Some(ua) = user_agent {
        context.insert("user_agent".into(), ua.into());
    }
    if rng.chance(0.5) {
        context.insert("correlation_id".into(), "@@C@@".into());
    }
    if rng.chance(0.25) {
        context.insert("request_id".into(), "@@R@@".into());
    }
    if rng.chance(0.4) {
        context.insert("source".into(), source.into());
    }
    if actor_type == "api" {
        context.insert("api_key_id".into(), actor["id"].clone());
    }
    if rng.chance(0.05) {
        context.insert(
            "reason".into(),
            (*rng.pick(&[
                "customer support ticket",
                "quarterly access review",
                "requested by manager",
                "automated remediation",
            ]))
            .into(),
        );
    }

    // Field changes for writes; a sign-in records one.
    let n_changes = match action {
        "update" => rng.range(2, 4),
        "create" | "delete" | "bulk_update" => rng.range(2, 3),
        "login" => 1,
        _ => 0,
    };
    let mut changes = Vec::new();
    let mut used = Vec::new();
    while (changes.len() as u64) < n_changes {
        let field = if action == "login" {
            "last_login_at"
        } else {
            *rng.pick(CHANGE_FIELDS)
        };
        if used.contains(&field) {
            continue;
        }
        used.push(field);
        let new = if field == "last_login_at" {
            Value::from("@@T@@")
        } else {
            change_value(rng, field)
        };
        let mut old = change_value(rng, field);
        while old == new {
            old = change_value(rng, field);
        }
        let change = match action {
            "create" | "login" => json!({"field": field, "new": new}),
            "delete" => json!({"field": field, "old": old}),
            _ => json!({"field": field, "old": old, "new": new}),
        };
        changes.push(change);
    }

    let mut metadata = Map::new();
    let keys = [
        "app_version",
        "region",
        "client",
        "plan",
        "duration_ms",
        "retries",
        "feature_flag",
        "tenant",
    ];
    let n_meta = rng.range(2, 3) as usize;
    while metadata.len() < n_meta {
        let key = *rng.pick(&keys);
        let value = match key {
            "app_version" => Value::from(format!("4.{}.{}", rng.below(20), rng.below(10))),
            "region" => {
                (*rng.pick(&["eu-west-1", "us-east-1", "ap-northeast-1", "eu-central-1"])).into()
            }
            "client" => (*rng.pick(&["web", "ios", "android", "cli", "desktop"])).into(),
            "plan" => (*rng.pick(&["free", "team", "business", "enterprise"])).into(),
            "duration_ms" => Value::from(rng.skewed(5000, 2.0)),
            "retries" => Value::from(rng.below(4)),
            "feature_flag" => (*rng.pick(&["new_queue", "fast_export", "sso_v2"])).into(),
            _ => Value::from(format!("tenant-{}", rng.below(300))),
        };
        metadata.insert(key.into(), value);
    }

    let mut event = Map::new();
    event.insert("occurred_at".into(), "@@T@@".into());
    event.insert("action".into(), action.into());
    if let Some(d) = detailed {
        event.insert("detailed_action".into(), d.into());
    }
    // Most clients leave out what is the default anyway.
    if channel != "default" || rng.chance(0.2) {
        event.insert("channel".into(), channel.into());
    }
    event.insert("description".into(), description.into());
    if outcome == "failure" || rng.chance(0.3) {
        event.insert("outcome".into(), outcome.into());
    }
    event.insert("actor".into(), Value::Object(actor));
    event.insert("entity".into(), Value::Object(entity));
    if bulk {
        event.insert("entity_ids".into(), Value::Array(entity_ids));
    }
    event.insert("context".into(), Value::Object(context));
    if !changes.is_empty() {
        event.insert("changes".into(), Value::Array(changes));
    }
    event.insert("metadata".into(), Value::Object(metadata));
    let text = Value::Object(event).to_string();
    split_template(&text, space)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_core::redact::RedactionRules;

    #[test]
    fn reference_events_are_valid() {
        let pool = Pool::generate(7);
        let mut a = Assembler::new(1);
        let now = now_millis();
        for t in pool.templates.iter().take(3000) {
            let mut s = String::new();
            a.write(&mut s, t, now - 1000);
            let v: Value = serde_json::from_str(&s).unwrap();
            stele_core::parse_event(&v, now, &RedactionRules::default())
                .unwrap_or_else(|e| panic!("{s}: {e:?}"));
        }
        assert!(pool.average_bytes > 300.0 && pool.average_bytes < 800.0);
    }

    /// The same seed gives the same events, byte for byte (runs with one `--seed` send the same
    /// data); another seed gives others.
    #[test]
    fn the_generator_is_deterministic_for_a_seed() {
        let events = |seed: u64| {
            let mut rng = Rng::new(seed);
            let mut assembler = Assembler::new(seed);
            let mut out = String::new();
            for j in 0..200 {
                let template = reference_event(&mut rng, j);
                assembler.write(&mut out, &template, 1_700_000_000_000);
                out.push('\n');
            }
            out
        };
        assert_eq!(events(42), events(42));
        assert_ne!(events(42), events(43));
    }
}
