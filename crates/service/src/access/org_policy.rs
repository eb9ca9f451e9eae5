//! Per-organization policy that requests obey: whether ingest records events
//! ([`OrgSettings::enabled`]) and which addresses may read the trail (the IP allowlist).
//!
//! Ingest must not pay a database read per request, so the settings are cached in this process
//! ([`Policies`]), per organization, for [`crate::Config::settings_cache_ttl`] (5 seconds by
//! default). A change made through this server ([`Policies::save`]) replaces the cached copy at
//! once; a server sharing the database with it sees the change when its own copy expires, so
//! within that TTL. When a copy expires, the first request to notice reads the store while
//! others go on with the old copy until the fresh one arrives, so a busy organization never sees
//! a crowd of reads at once.
//!
//! Refused requests are recorded in the organization's trail
//! (`crate::trail::activity::access_denied`), at most once a minute per (organization, actor,
//! address) and server process, so a client retrying in a loop cannot flood the trail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use stele_core::event::{Actor, Context};
use stele_core::time::Millis;
use stele_store::{OrgKey, OrgSettings, Store, StoreError};

use crate::access::Cidr;
use crate::clock::SharedClock;
use crate::trail::activity;

/// How often a refused request is recorded, per (organization, actor, address).
pub const DENIAL_RECORD_EVERY_MS: Millis = 60_000;
/// The longest IP allowlist an organization may keep.
pub const MAX_ALLOWLIST_ENTRIES: usize = 1000;
/// Past this many remembered denials, those older than the interval are forgotten.
const SWEEP_DENIALS_ABOVE: usize = 10_000;

/// An organization's settings as requests need them.
#[derive(Debug)]
pub struct OrgPolicy {
    pub settings: OrgSettings,
    pub allowlist: Allowlist,
}

impl OrgPolicy {
    fn new(settings: OrgSettings) -> OrgPolicy {
        OrgPolicy {
            allowlist: Allowlist::from_stored(&settings.ip_allowlist),
            settings,
        }
    }
}

/// The networks an organization accepts reads from; empty accepts every address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    networks: Vec<Cidr>,
    /// Whether the organization has a list at all, even one whose entries no longer parse.
    restricted: bool,
}

impl Allowlist {
    /// The stored list. It was checked when it was saved, so an entry that does not parse was
    /// edited by hand; it is logged and matches nothing (the list stays a restriction: dropping a
    /// bad entry must not open the organization to everyone).
    pub fn from_stored(entries: &[String]) -> Allowlist {
        let networks = entries
            .iter()
            .filter_map(|entry| match entry.parse::<Cidr>() {
                Ok(network) => Some(network),
                Err(error) => {
                    tracing::error!(%entry, %error, "an IP allowlist entry does not parse; ignored");
                    None
                }
            })
            .collect();
        Allowlist {
            networks,
            restricted: !entries.is_empty(),
        }
    }

    /// Whether a request from `ip` may proceed. An unknown address is refused by a list.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        if !self.restricted {
            return true;
        }
        ip.is_some_and(|ip| self.networks.iter().any(|n| n.contains(ip)))
    }
}

/// Reads a submitted IP allowlist: each entry a network or an address, in canonical form, without
/// duplicates. An error names the entry (`ip_allowlist[2]`) and what is wrong with it.
pub fn parse_allowlist<'a>(
    entries: impl ExactSizeIterator<Item = &'a str>,
) -> Result<Vec<String>, AllowlistError> {
    if entries.len() > MAX_ALLOWLIST_ENTRIES {
        return Err(AllowlistError {
            field: "ip_allowlist".into(),
            message: format!(
                "holds {} entries; the limit is {MAX_ALLOWLIST_ENTRIES}",
                entries.len()
            ),
        });
    }
    let mut list: Vec<String> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.enumerate() {
        let network = entry.parse::<Cidr>().map_err(|e| AllowlistError {
            field: format!("ip_allowlist[{i}]"),
            message: e.to_string(),
        })?;
        let network = network.to_string();
        if !list.contains(&network) {
            list.push(network);
        }
    }
    Ok(list)
}

/// Refuses a list that would shut out the request saving it: the one change that would leave no
/// one able to change it back through the API or the console.
pub fn check_not_locked_out(list: &[String], ip: Option<IpAddr>) -> Result<(), AllowlistError> {
    if Allowlist::from_stored(list).allows(ip) {
        return Ok(());
    }
    let message = match ip {
        Some(ip) => format!(
            "would lock you out: this request comes from {ip}, which no entry contains; add it \
             (or its network) to the list"
        ),
        None => "would lock you out: the address this request comes from is unknown, so no \
                 list can be checked to include it"
            .to_string(),
    };
    Err(AllowlistError {
        field: "ip_allowlist".into(),
        message,
    })
}

/// A submitted allowlist that cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistError {
    /// `ip_allowlist`, or `ip_allowlist[i]` for one entry.
    pub field: String,
    pub message: String,
}

/// Why a request may not proceed.
#[derive(Debug)]
pub enum AccessError {
    /// The organization's IP allowlist does not include the client's address (`None`: unknown).
    NotAllowed {
        ip: Option<IpAddr>,
    },
    Store(StoreError),
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        AccessError::Store(e)
    }
}

/// A request, as a refused one is recorded.
pub struct Attempt<'a> {
    /// The API key or the member.
    pub actor: Actor,
    /// With the client's address as `ip`.
    pub context: Context,
    pub method: &'a str,
    pub path: &'a str,
}

/// The cached policies of every organization this process has served, and its record of
/// refusals. One per server, in the application state.
pub struct Policies {
    store: Arc<dyn Store>,
    clock: SharedClock,
    ttl_ms: Millis,
    cache: Mutex<Cache>,
    /// When a refusal was last recorded, per who was refused.
    denials: Mutex<HashMap<Refused, Millis>>,
}

/// Who was refused: organization, actor (key or member id, or a link's name) and address.
type Refused = (OrgKey, String, Option<IpAddr>);

#[derive(Default)]
struct Cache {
    entries: HashMap<OrgKey, Cached>,
    /// Bumped by every save, so that a read which began before a save cannot put its older
    /// result over the saved one.
    generation: u64,
}

struct Cached {
    policy: Arc<OrgPolicy>,
    read_at: Millis,
    /// A request is reading a fresh copy; others keep using this one meanwhile.
    refreshing: bool,
}

impl Policies {
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, ttl: std::time::Duration) -> Policies {
        Policies {
            store,
            clock,
            ttl_ms: ttl.as_millis() as Millis,
            cache: Mutex::default(),
            denials: Mutex::default(),
        }
    }

    /// The organization's policy, from the cache while it is fresh.
    pub async fn get(&self, org: OrgKey) -> Result<Arc<OrgPolicy>, StoreError> {
        let now = self.clock.now();
        let generation = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            let generation = cache.generation;
            if let Some(cached) = cache.entries.get_mut(&org) {
                let age = now - cached.read_at;
                if (0..self.ttl_ms).contains(&age) || cached.refreshing {
                    return Ok(cached.policy.clone());
                }
                cached.refreshing = true;
            }
            generation
        };
        // Clears `refreshing` however this ends (an error, or the request dropped mid-read), so
        // the next request reads again rather than everyone keeping an old copy.
        let guard = RefreshGuard {
            cache: &self.cache,
            org,
        };
        let settings = self.store.settings(org).await?;
        let policy = Arc::new(OrgPolicy::new(settings));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.generation == generation {
            cache.entries.insert(
                org,
                Cached {
                    policy: policy.clone(),
                    read_at: now,
                    refreshing: false,
                },
            );
        }
        drop(cache);
        drop(guard);
        Ok(policy)
    }

    /// Stores the organization's settings and puts them in the cache at once, so this server
    /// applies them from the next request on (servers sharing the database: within the TTL).
    pub async fn save(&self, org: OrgKey, settings: &OrgSettings) -> Result<(), StoreError> {
        // Any read already under way predates this save: its result must not be cached.
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation += 1;
        self.store.put_settings(org, settings).await?;
        let now = self.clock.now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.generation += 1;
        cache.entries.insert(
            org,
            Cached {
                policy: Arc::new(OrgPolicy::new(settings.clone())),
                read_at: now,
                refreshing: false,
            },
        );
        Ok(())
    }

    /// Whether the organization records events sent to the ingest endpoints now.
    pub async fn recording_enabled(&self, org: OrgKey) -> Result<bool, StoreError> {
        Ok(self.get(org).await?.settings.enabled)
    }

    /// Lets the request through if the organization's IP allowlist includes its address
    /// (`attempt.context.ip`); otherwise records the refusal (see the module docs for how often)
    /// and refuses it.
    pub async fn admit(
        &self,
        org: OrgKey,
        ip: Option<IpAddr>,
        attempt: Attempt<'_>,
    ) -> Result<(), AccessError> {
        let policy = self.get(org).await?;
        if policy.allowlist.allows(ip) {
            return Ok(());
        }
        let now = self.clock.now();
        let actor_key = attempt
            .actor
            .id
            .clone()
            .or_else(|| attempt.actor.name.clone())
            .unwrap_or_default();
        if self.first_denial_in_a_while(org, actor_key, ip, now) {
            let event = activity::access_denied(
                attempt.actor,
                attempt.context,
                attempt.method,
                attempt.path,
                now,
            );
            if let Err(error) = crate::trail::record(self.store.as_ref(), org, event).await {
                tracing::error!(%error, org = org.get(), "recording a request the IP allowlist refused failed");
            }
        }
        tracing::info!(org = org.get(), ip = ?ip, path = attempt.path, "refused by the IP allowlist");
        Err(AccessError::NotAllowed { ip })
    }

    /// True if no refusal of this actor from this address was recorded in the last interval (and
    /// notes this one).
    fn first_denial_in_a_while(
        &self,
        org: OrgKey,
        actor: String,
        ip: Option<IpAddr>,
        now: Millis,
    ) -> bool {
        let mut denials = self.denials.lock().unwrap_or_else(PoisonError::into_inner);
        if denials.len() > SWEEP_DENIALS_ABOVE {
            denials.retain(|_, at| now - *at < DENIAL_RECORD_EVERY_MS);
        }
        let last = denials.entry((org, actor, ip)).or_insert(Millis::MIN);
        if now.saturating_sub(*last) < DENIAL_RECORD_EVERY_MS {
            return false;
        }
        *last = now;
        true
    }
}

struct RefreshGuard<'a> {
    cache: &'a Mutex<Cache>,
    org: OrgKey,
}

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.entries.get_mut(&self.org) {
            cached.refreshing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stele_core::event::ActorType;
    use stele_store_sqlite::SqliteStore;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn an_allowlist_parses_canonically_and_names_the_bad_entry() {
        let list = parse_allowlist(
            ["10.1.2.3/8", "198.51.100.7", "2001:db8::/32", "10.0.0.0/8"].into_iter(),
        )
        .unwrap();
        assert_eq!(list, ["10.0.0.0/8", "198.51.100.7", "2001:db8::/32"]);
        let error = parse_allowlist(["10.0.0.0/8", "10.0.0.0/40"].into_iter()).unwrap_err();
        assert_eq!(error.field, "ip_allowlist[1]");
        let many: Vec<String> = (0..=MAX_ALLOWLIST_ENTRIES)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let error = parse_allowlist(many.iter().map(String::as_str)).unwrap_err();
        assert_eq!(error.field, "ip_allowlist");
    }

    #[test]
    fn an_empty_list_allows_everyone_and_a_list_only_its_networks() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let open = Allowlist::from_stored(&[]);
        assert!(open.allows(ip("192.0.2.1")) && open.allows(None));
        let list = Allowlist::from_stored(&["203.0.113.0/24".into(), "2001:db8::1".into()]);
        assert!(list.allows(ip("203.0.113.50")));
        assert!(list.allows(ip("::ffff:203.0.113.50")));
        assert!(list.allows(ip("2001:db8::1")));
        assert!(!list.allows(ip("2001:db8::2")));
        assert!(!list.allows(ip("192.0.2.1")));
        assert!(!list.allows(None), "an unknown address is refused");
        // A hand-edited entry that does not parse matches nothing, and opens nothing either.
        let broken = Allowlist::from_stored(&["not a network".into()]);
        assert!(!broken.allows(ip("192.0.2.1")));
    }

    #[test]
    fn a_list_that_excludes_the_saving_request_is_refused() {
        let list = vec!["203.0.113.0/24".to_string()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(check_not_locked_out(&list, ip("203.0.113.9")).is_ok());
        let error = check_not_locked_out(&list, ip("192.0.2.1")).unwrap_err();
        assert_eq!(error.field, "ip_allowlist");
        assert!(error.message.contains("lock you out") && error.message.contains("192.0.2.1"));
        assert!(check_not_locked_out(&[], None).is_ok());
        assert!(check_not_locked_out(&list, None).is_err());
    }

    struct Fixture {
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        org: OrgKey,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("stele.db")).unwrap());
        let org = store.create_org("acme").await.unwrap().key;
        Fixture {
            store,
            clock: ManualClock::starting_at(1_000_000),
            org,
            _dir: dir,
        }
    }

    fn disabled() -> OrgSettings {
        OrgSettings {
            enabled: false,
            ..OrgSettings::default()
        }
    }

    #[tokio::test]
    async fn a_change_by_another_server_is_seen_once_the_cached_copy_expires() {
        let f = fixture().await;
        let policies = Policies::new(
            f.store.clone(),
            SharedClock(f.clock.clone()),
            Duration::from_secs(5),
        );
        assert!(policies.recording_enabled(f.org).await.unwrap());
        // Another server (the same database) turns recording off.
        f.store.put_settings(f.org, &disabled()).await.unwrap();
        f.clock.advance(Duration::from_millis(4_999));
        assert!(
            policies.recording_enabled(f.org).await.unwrap(),
            "within the TTL, the cached copy"
        );
        f.clock.advance(Duration::from_millis(1));
        assert!(
            !policies.recording_enabled(f.org).await.unwrap(),
            "after the TTL, read again"
        );
    }

    #[tokio::test]
    async fn a_change_saved_here_applies_at_once() {
        let f = fixture().await;
        let policies = Policies::new(
            f.store.clone(),
            SharedClock(f.clock.clone()),
            Duration::from_secs(3600),
        );
        assert!(policies.recording_enabled(f.org).await.unwrap());
        policies.save(f.org, &disabled()).await.unwrap();
        assert!(!policies.recording_enabled(f.org).await.unwrap());
        assert_eq!(f.store.settings(f.org).await.unwrap(), disabled(), "stored");
    }

    #[tokio::test]
    async fn refusals_are_recorded_at_most_once_a_minute_per_actor_and_address() {
        let f = fixture().await;
        let policies = Policies::new(
            f.store.clone(),
            SharedClock(f.clock.clone()),
            Duration::from_secs(5),
        );
        let only = OrgSettings {
            ip_allowlist: vec!["203.0.113.0/24".into()],
            ..OrgSettings::default()
        };
        policies.save(f.org, &only).await.unwrap();
        let attempt = |key: &str, ip: &str| {
            let actor = Actor {
                kind: ActorType::Api,
                id: Some(key.to_string()),
                name: None,
                email: None,
                href: None,
                metadata: Default::default(),
                original_type: None,
            };
            let context = Context {
                ip: Some(ip.to_string()),
                ..Context::default()
            };
            (
                Some(ip.parse::<IpAddr>().unwrap()),
                Attempt {
                    actor,
                    context,
                    method: "GET",
                    path: "/v1/events",
                },
            )
        };
        let try_as = |key: &'static str, ip: &'static str| {
            let policies = &policies;
            let org = f.org;
            async move {
                let (ip, attempt) = attempt(key, ip);
                policies.admit(org, ip, attempt).await
            }
        };
        assert!(try_as("key_a", "203.0.113.9").await.is_ok());
        for _ in 0..5 {
            assert!(matches!(
                try_as("key_a", "192.0.2.1").await,
                Err(AccessError::NotAllowed { ip: Some(_) })
            ));
        }
        // Another key, another address: each gets its own entry.
        assert!(try_as("key_b", "192.0.2.1").await.is_err());
        assert!(try_as("key_a", "192.0.2.2").await.is_err());
        let denials = || async {
            let page = stele_core::params::PageRequest::from_params([
                ("actor_type", "all"),
                ("action", "access_denied"),
            ])
            .unwrap();
            f.store.list(f.org, &page).await.unwrap().entries
        };
        assert_eq!(denials().await.len(), 3);
        f.clock.advance(Duration::from_secs(59));
        assert!(try_as("key_a", "192.0.2.1").await.is_err());
        assert_eq!(denials().await.len(), 3, "still within the minute");
        f.clock.advance(Duration::from_secs(1));
        assert!(try_as("key_a", "192.0.2.1").await.is_err());
        let entries = denials().await;
        assert_eq!(entries.len(), 4, "a minute later, recorded again");
        let newest = &entries[0].event;
        assert_eq!(newest.channel, "security");
        assert_eq!(newest.detailed_action.as_deref(), Some(activity::IP_DENIED));
        assert_eq!(newest.context.ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(newest.actor.id.as_deref(), Some("key_a"));
        assert_eq!(newest.metadata["path"], "/v1/events");
    }
}
