//! The `compat` scenario (opt-in): the WorkOS and Retraced doors beside the native API, on the
//! same server in one run, each kind of request sending the same events in its own wire format.
//!
//! - single events: the native `POST /v1/events` (a platform key naming the organization in the
//!   `Stele-Organization` header) against WorkOS's `POST /audit_logs/events` (the body
//!   `@workos-inc/node` sends, a fresh `Idempotency-Key` per event as the SDK generates one), from
//!   `--single-clients` concurrent clients;
//! - bulk: the native batch of 50 against Retraced's `…/event/bulk` of 50 (its limit), from
//!   `--ingest-clients` clients.
//!
//! The single events also run natively with an `Idempotency-Key`, as the WorkOS SDK sends one
//! with every event: what the door costs beyond the key it must keep. Each kind runs in passes
//! of `--compat-seconds / 4` seconds in the order A, B, (C, C,) B, A, so that none gets more of
//! the early (shorter trail) or late passes. Every event carries two targets
//! where the format can hold them, metadata, an address and a user agent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use stele_core::time::{format_rfc3339, now_millis};

use crate::BenchArgs;
use crate::generator::mix;
use crate::http::Http;
use crate::report::{ms, pct, thousands};
use crate::scenarios::single::stop_after;

/// The organization every request of the scenario records into (its external id).
const GROUP: &str = "bench-compat";
/// Events per bulk request: Retraced's limit, so both kinds send the same.
const BULK: usize = 50;

/// The kinds of request measured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Door {
    NativeSingle,
    /// The native single event with an `Idempotency-Key`, as WorkOS's SDK sends every event:
    /// what the WorkOS door costs beyond the key it must keep.
    NativeSingleKeyed,
    WorkosSingle,
    NativeBulk,
    RetracedBulk,
}

impl Door {
    fn label(self) -> &'static str {
        match self {
            Door::NativeSingle => "native `POST /v1/events`, one event",
            Door::NativeSingleKeyed => {
                "native `POST /v1/events`, one event with an Idempotency-Key"
            }
            Door::WorkosSingle => "WorkOS `POST /audit_logs/events` (SDK body, Idempotency-Key)",
            Door::NativeBulk => "native `POST /v1/events`, batch of 50",
            Door::RetracedBulk => "Retraced `…/event/bulk`, 50 events",
        }
    }

    fn events_per_request(self) -> usize {
        match self {
            Door::NativeSingle | Door::NativeSingleKeyed | Door::WorkosSingle => 1,
            Door::NativeBulk | Door::RetracedBulk => BULK,
        }
    }
}

/// One timed pass of one kind.
pub(crate) struct Pass {
    pub(crate) door: Door,
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
}

pub(crate) struct CompatResult {
    pub(crate) passes: Vec<Pass>,
    pub(crate) single_clients: usize,
    pub(crate) bulk_clients: usize,
}

/// Where and as whom the requests go.
pub(crate) struct Target<'a> {
    pub(crate) http: &'a Http,
    pub(crate) platform_key: &'a str,
    /// The platform's id: Retraced's project id.
    pub(crate) project: &'a str,
}

pub(crate) async fn run(target: Target<'_>, args: &BenchArgs) -> anyhow::Result<CompatResult> {
    // Each pair of passes of a kind shares the seconds of one pass of the 2-kind bulk comparison.
    let pass = Duration::from_secs(args.compat_seconds.max(4)) / 4;
    eprintln!(
        "bench: compat: WorkOS single events against native ones ({} clients), Retraced bulks \
         against native batches of {BULK} ({} clients), passes of {:.1} s",
        args.single_clients,
        args.ingest_clients,
        pass.as_secs_f64()
    );
    // Off the clock: the organization, made by its first event.
    send(&target, Door::NativeSingle, &mut Events::new(args.seed, 0)).await?;
    let mut passes = Vec::new();
    let single = [
        Door::NativeSingle,
        Door::NativeSingleKeyed,
        Door::WorkosSingle,
    ];
    let bulk = [Door::NativeBulk, Door::RetracedBulk];
    for (kinds, clients) in [
        (&single[..], args.single_clients),
        (&bulk[..], args.ingest_clients),
    ] {
        // A, B, …, then the same backwards.
        let order: Vec<Door> = kinds.iter().chain(kinds.iter().rev()).copied().collect();
        for door in order {
            // Each pass draws its own events (and idempotency keys: a key sent again with
            // another body is refused, as it must be).
            let seed = mix(args.seed ^ passes.len() as u64);
            let p = load(&target, door, clients, seed, pass).await?;
            eprintln!(
                "bench: compat: {:?}: {} events in {:.2} s",
                door,
                p.events,
                p.elapsed.as_secs_f64()
            );
            passes.push(p);
        }
    }
    Ok(CompatResult {
        passes,
        single_clients: args.single_clients,
        bulk_clients: args.ingest_clients,
    })
}

/// `clients` clients sending requests of one kind until `length` has passed.
async fn load(
    target: &Target<'_>,
    door: Door,
    clients: usize,
    seed: u64,
    length: Duration,
) -> anyhow::Result<Pass> {
    let stop: Arc<AtomicBool> = stop_after(length);
    let stored = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = target.http.clone();
        let key = target.platform_key.to_string();
        let project = target.project.to_string();
        let stop = stop.clone();
        let stored = stored.clone();
        let salt = mix(door as u64 + 1) ^ c as u64;
        tasks.push(tokio::spawn(async move {
            let target = Target {
                http: &http,
                platform_key: &key,
                project: &project,
            };
            let mut events = Events::new(seed, salt);
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                send(&target, door, &mut events).await?;
                latencies.push(sent.elapsed());
                stored.fetch_add(door.events_per_request() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort();
    Ok(Pass {
        door,
        events: stored.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Sends one request of this kind; an answer other than the door's success is an error.
async fn send(target: &Target<'_>, door: Door, events: &mut Events) -> anyhow::Result<()> {
    let http = target.http;
    let key = target.platform_key;
    let n = door.events_per_request();
    let (request, expected) = match door {
        Door::NativeSingle | Door::NativeSingleKeyed | Door::NativeBulk => {
            let batch: Vec<Value> = (0..n).map(|_| events.next().native()).collect();
            let body = if n == 1 {
                batch.into_iter().next().expect("one event")
            } else {
                json!({ "events": batch })
            };
            let mut request = http
                .client
                .post(format!("{}/v1/events", http.url))
                .bearer_auth(key)
                .header("stele-organization", GROUP)
                .json(&body);
            if door == Door::NativeSingleKeyed {
                request = request.header("idempotency-key", events.idempotency_key());
            }
            (request, reqwest::StatusCode::CREATED)
        }
        Door::WorkosSingle => {
            let body = json!({"event": events.next().workos(), "organization_id": GROUP});
            (
                http.client
                    .post(format!("{}/audit_logs/events", http.url))
                    .bearer_auth(key)
                    .header("idempotency-key", events.idempotency_key())
                    .json(&body),
                reqwest::StatusCode::OK,
            )
        }
        Door::RetracedBulk => {
            let batch: Vec<Value> = (0..n).map(|_| events.next().retraced()).collect();
            (
                http.client
                    .post(format!(
                        "{}/auditlog/publisher/v1/project/{}/event/bulk",
                        http.url, target.project
                    ))
                    .header("authorization", format!("token={key}"))
                    .json(&json!({ "events": batch })),
                reqwest::StatusCode::CREATED,
            )
        }
    };
    let response = request.send().await.with_context(|| format!("{door:?}"))?;
    let status = response.status();
    if status != expected {
        let body = response.text().await.unwrap_or_default();
        bail!("{door:?} answered {status}: {body}");
    }
    response.bytes().await?;
    Ok(())
}

/// What one event says, whichever format writes it.
struct Event {
    at: i64,
    action: &'static str,
    crud: &'static str,
    actor: u64,
    team: u64,
    document: u64,
    ip: [u8; 4],
    plan: &'static str,
    seats: u64,
}

const ACTIONS: &[(&str, &str)] = &[
    ("document.updated", "u"),
    ("document.viewed", "r"),
    ("user.signed_in", "r"),
    ("team.member_added", "c"),
    ("document.deleted", "d"),
];
const PLANS: &[&str] = &["free", "team", "business", "enterprise"];

impl Event {
    fn actor(&self) -> (String, String) {
        (
            format!("user_{:06}", self.actor),
            format!("User {}", self.actor),
        )
    }

    fn ip(&self) -> String {
        let [a, b, c, d] = self.ip;
        format!("{a}.{b}.{c}.{d}")
    }

    fn description(&self) -> String {
        format!(
            "User {} {} document {} of team {}",
            self.actor,
            self.action.rsplit('.').next().unwrap_or(self.action),
            self.document,
            self.team
        )
    }

    fn native(&self) -> Value {
        let (id, name) = self.actor();
        json!({
            "occurred_at": format_rfc3339(self.at),
            "action": stele_server::compat::vocabulary::general_action(self.action),
            "detailed_action": self.action,
            "description": self.description(),
            "actor": {"type": "user", "id": id, "name": name},
            "entity": {"type": "document", "id": format!("doc_{}", self.document), "name": format!("Document {}", self.document)},
            "related_entities": [{"type": "team", "id": format!("team_{}", self.team), "name": format!("Team {}", self.team)}],
            "context": {"ip": self.ip(), "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench"},
            "metadata": {"plan": self.plan, "seats": self.seats, "sso": self.seats > 10},
        })
    }

    fn workos(&self) -> Value {
        let (id, name) = self.actor();
        json!({
            "action": self.action,
            "occurred_at": format_rfc3339(self.at),
            "actor": {"id": id, "type": "user", "name": name},
            "targets": [
                {"id": format!("doc_{}", self.document), "type": "document", "name": format!("Document {}", self.document)},
                {"id": format!("team_{}", self.team), "type": "team", "name": format!("Team {}", self.team)},
            ],
            "context": {"location": self.ip(), "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench"},
            "metadata": {"plan": self.plan, "seats": self.seats, "sso": self.seats > 10},
        })
    }

    fn retraced(&self) -> Value {
        let (id, name) = self.actor();
        json!({
            "action": self.action,
            "group": {"id": GROUP},
            "crud": self.crud,
            "created": format_rfc3339(self.at),
            "actor": {"id": id, "name": name},
            "target": {"id": format!("doc_{}", self.document), "name": format!("Document {}", self.document), "type": "document"},
            "source_ip": self.ip(),
            "description": self.description(),
            "fields": {"plan": self.plan, "seats": self.seats.to_string(), "team": format!("team_{}", self.team)},
        })
    }
}

/// A client's stream of events, drawn from the seed.
struct Events {
    state: u64,
    sent: u64,
}

impl Events {
    fn new(seed: u64, salt: u64) -> Events {
        Events {
            state: mix(seed ^ mix(salt)),
            sent: 0,
        }
    }

    fn draw(&mut self) -> u64 {
        self.state = mix(self.state);
        self.state
    }

    fn next(&mut self) -> Event {
        self.sent += 1;
        let (action, crud) = ACTIONS[(self.draw() % ACTIONS.len() as u64) as usize];
        let r = self.draw();
        Event {
            at: now_millis(),
            action,
            crud,
            actor: r % 5_000,
            team: (r >> 16) % 200,
            document: (r >> 24) % 100_000,
            ip: [10, (r >> 40) as u8, (r >> 48) as u8, (r >> 56) as u8],
            plan: PLANS[((r >> 8) % PLANS.len() as u64) as usize],
            seats: (r >> 32) % 50,
        }
    }

    /// A key per event, as the WorkOS SDK makes one (`workos-node-<uuid>`).
    fn idempotency_key(&mut self) -> String {
        let (a, b) = (self.draw(), self.draw());
        format!(
            "workos-node-{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

impl CompatResult {
    /// The passes of one kind, added up: events, seconds, sorted latencies.
    fn totals(&self, door: Door) -> (u64, f64, Vec<Duration>) {
        let mut events = 0;
        let mut seconds = 0.0;
        let mut latencies = Vec::new();
        for p in self.passes.iter().filter(|p| p.door == door) {
            events += p.events;
            seconds += p.elapsed.as_secs_f64();
            latencies.extend_from_slice(&p.latencies);
        }
        latencies.sort();
        (events, seconds, latencies)
    }

    pub(crate) fn render(&self, o: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            o,
            "\n## The WorkOS and Retraced doors beside the native API\n"
        );
        let _ = writeln!(
            o,
            "The same events in each door's wire format, in passes A, B, (C, C,) B, A on one \
             server (single events: {} clients; bulk: {} clients). The last column compares with \
             the native requests without a key.\n",
            self.single_clients, self.bulk_clients
        );
        let _ = writeln!(
            o,
            "| requests | events/s | p50 | p99 | events | of the native rate |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for (door, native) in [
            (Door::NativeSingle, Door::NativeSingle),
            (Door::NativeSingleKeyed, Door::NativeSingle),
            (Door::WorkosSingle, Door::NativeSingle),
            (Door::NativeBulk, Door::NativeBulk),
            (Door::RetracedBulk, Door::NativeBulk),
        ] {
            let (events, seconds, latencies) = self.totals(door);
            let rate = events as f64 / seconds.max(f64::MIN_POSITIVE);
            let (native_events, native_seconds, _) = self.totals(native);
            let native_rate = native_events as f64 / native_seconds.max(f64::MIN_POSITIVE);
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {:.2} |",
                door.label(),
                thousands(rate.round() as u64),
                ms(pct(&latencies, 0.50)),
                ms(pct(&latencies, 0.99)),
                thousands(events),
                rate / native_rate.max(f64::MIN_POSITIVE)
            );
        }
    }
}
