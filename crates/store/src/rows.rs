//! Pages of stored rows, copied out of the database but not parsed: what an export walks.
//!
//! A [`RowPage`] holds a page's entries as [`StoredRow`]s whose text lives in one buffer, so the
//! store's reading thread only copies bytes, and the export's encoder (on another thread) does the
//! parsing: the whole [`Entry`](stele_core::Entry) for JSON and NDJSON, or just the cells a CSV
//! row needs ([`FlatEntry`]), borrowed from the stored JSON without an allocation per cell.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;
use stele_core::filter::{Cursor, CursorDirection};
use stele_core::params::PageRequest;
use stele_core::time::Millis;
use stele_core::{ActorType, Outcome, Seq};

use crate::record::{CorruptRow, StoredRow, parse};

/// A page of stored entries in walking order, and where the walk goes on.
#[derive(Default)]
pub struct RowPage {
    /// Every text column of every row, back to back.
    text: String,
    rows: Vec<Slots>,
    /// Where the next page of the walk starts (older entries), `None` after the last page.
    pub next_cursor: Option<Cursor>,
}

/// One row of a [`RowPage`]: its scalars, and where each text column sits in the page's buffer.
struct Slots {
    pk: i64,
    seq: Seq,
    occurred_at: Millis,
    recorded_at: Millis,
    actor_type: ActorType,
    outcome: Outcome,
    erased: bool,
    /// In [`StoredRow`] field order: action, detailed action, channel, entity type,
    /// correlation id, description, personal, body. `None` for a NULL column.
    text: [Option<Range<usize>>; 8],
}

impl RowPage {
    pub fn with_capacity(rows: usize) -> RowPage {
        RowPage {
            // About 500 bytes of text per row.
            text: String::with_capacity(rows * 512),
            rows: Vec::with_capacity(rows),
            next_cursor: None,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Copies a row in.
    pub fn push(&mut self, row: &StoredRow<'_>) {
        let mut put = |s: Option<&str>| {
            s.map(|s| {
                let start = self.text.len();
                self.text.push_str(s);
                start..self.text.len()
            })
        };
        let text = [
            put(Some(row.action)),
            put(row.detailed_action),
            put(Some(row.channel)),
            put(row.entity_type),
            put(row.correlation_id),
            put(row.description),
            put(Some(row.personal)),
            put(Some(row.body)),
        ];
        self.rows.push(Slots {
            pk: row.pk,
            seq: row.seq,
            occurred_at: row.occurred_at,
            recorded_at: row.recorded_at,
            actor_type: row.actor_type,
            outcome: row.outcome,
            erased: row.erased,
            text,
        });
    }

    pub fn get(&self, i: usize) -> Option<StoredRow<'_>> {
        let slots = self.rows.get(i)?;
        let text = |k: usize| slots.text[k].clone().map(|r| &self.text[r]);
        Some(StoredRow {
            pk: slots.pk,
            seq: slots.seq,
            occurred_at: slots.occurred_at,
            recorded_at: slots.recorded_at,
            action: text(0).unwrap_or_default(),
            detailed_action: text(1),
            channel: text(2).unwrap_or_default(),
            actor_type: slots.actor_type,
            outcome: slots.outcome,
            entity_type: text(3),
            correlation_id: text(4),
            description: text(5),
            personal: text(6).unwrap_or_default(),
            body: text(7).unwrap_or_default(),
            erased: slots.erased,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = StoredRow<'_>> {
        (0..self.rows.len()).filter_map(|i| self.get(i))
    }

    /// Finishes a page read in walking order with up to `limit + 1` rows (the extra one only says
    /// that more exist), as [`Page::from_window`](crate::Page::from_window) does for entries:
    /// newest first, and the cursor to the next (older) page if there is one.
    pub fn finish(mut self, request: &PageRequest) -> RowPage {
        let direction = request
            .cursor
            .map_or(CursorDirection::Older, |c| c.direction);
        let more = self.rows.len() > request.limit;
        self.rows.truncate(request.limit);
        if direction == CursorDirection::Newer {
            self.rows.reverse();
        }
        // Walking newer, the older entries exist: the walk came from them.
        let older_exists = more || direction == CursorDirection::Newer;
        self.next_cursor = self.rows.last().filter(|_| older_exists).map(|s| Cursor {
            direction: CursorDirection::Older,
            occurred_at: s.occurred_at,
            seq: s.seq,
        });
        self
    }
}

/// A stored entry as the flat cells of an export row, borrowed from its [`StoredRow`]: text is
/// copied only where the stored JSON escaped it. `entity_ids`, `changes`, `related_entities` and
/// the metadata maps are the JSON text the API writes for them (the stored text, which serde_json wrote from the same
/// values), empty when there are none.
#[derive(Debug, PartialEq)]
pub struct FlatEntry<'a> {
    pub pk: i64,
    pub seq: Seq,
    pub occurred_at: Millis,
    pub recorded_at: Millis,
    pub channel: &'a str,
    pub action: &'a str,
    pub detailed_action: Option<&'a str>,
    pub description: Option<&'a str>,
    pub outcome: Outcome,
    pub actor_type: ActorType,
    pub actor_id: Option<Cow<'a, str>>,
    pub actor_name: Option<Cow<'a, str>>,
    pub actor_email: Option<Cow<'a, str>>,
    pub entity_type: Option<&'a str>,
    pub entity_id: Option<Cow<'a, str>>,
    pub entity_name: Option<Cow<'a, str>>,
    pub entity_ids: &'a str,
    pub ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub correlation_id: Option<&'a str>,
    pub changes: &'a str,
    pub metadata: &'a str,
    pub actor_href: Option<Cow<'a, str>>,
    pub actor_metadata: &'a str,
    pub actor_original_type: Option<Cow<'a, str>>,
    pub entity_href: Option<Cow<'a, str>>,
    pub entity_metadata: &'a str,
    pub related_entities: &'a str,
    pub origin: &'a str,
}

/// A JSON string borrowed from the input unless it holds escapes. (serde borrows a `Cow` only
/// when the field itself is one, not inside an `Option`.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The parts of [`Body`](crate::record::Body) a flat row needs, in the same short keys.
#[derive(Deserialize)]
struct BodyCells<'a> {
    #[serde(rename = "ei", borrow, default)]
    entity_id: Option<Text<'a>>,
    #[serde(rename = "en", borrow, default)]
    entity_name: Option<Text<'a>>,
    #[serde(rename = "ids", borrow, default)]
    entity_ids: Option<&'a RawValue>,
    #[serde(rename = "ch", borrow, default)]
    changes: Option<&'a RawValue>,
    #[serde(rename = "md", borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(rename = "ah", borrow, default)]
    actor_href: Option<Text<'a>>,
    #[serde(rename = "am", borrow, default)]
    actor_metadata: Option<&'a RawValue>,
    #[serde(rename = "ao", borrow, default)]
    actor_original_type: Option<Text<'a>>,
    #[serde(rename = "eh", borrow, default)]
    entity_href: Option<Text<'a>>,
    #[serde(rename = "em", borrow, default)]
    entity_metadata: Option<&'a RawValue>,
    #[serde(rename = "re", borrow, default)]
    related_entities: Option<&'a RawValue>,
    #[serde(rename = "og", borrow, default)]
    origin: Option<&'a RawValue>,
}

/// [`Personal`](stele_core::chain::Personal), borrowed.
#[derive(Deserialize)]
struct PersonalCells<'a> {
    // The stored names, short and long, as `stele_core::chain::Personal` reads them.
    #[serde(borrow, default, rename = "ai", alias = "actor_id")]
    actor_id: Option<Text<'a>>,
    #[serde(borrow, default, rename = "an", alias = "actor_name")]
    actor_name: Option<Text<'a>>,
    #[serde(borrow, default, rename = "ae", alias = "actor_email")]
    actor_email: Option<Text<'a>>,
    #[serde(borrow, default)]
    ip: Option<Text<'a>>,
    #[serde(borrow, default, rename = "ua", alias = "user_agent")]
    user_agent: Option<Text<'a>>,
}

impl<'a> StoredRow<'a> {
    /// The row's export cells, parsed in place (see [`FlatEntry`]).
    pub fn flat(&self) -> Result<FlatEntry<'a>, CorruptRow> {
        let body: BodyCells<'a> = parse("body", self.body)?;
        let personal: PersonalCells<'a> = parse("personal", self.personal)?;
        let text = |t: Option<Text<'a>>| t.map(|t| t.0);
        // The body leaves out empty lists and maps; an empty one written anyway reads the same.
        let json = |raw: Option<&'a RawValue>| match raw.map(RawValue::get) {
            Some("[]" | "{}") | None => "",
            Some(json) => json,
        };
        // As in `StoredRow::entry`: an entity's id and name belong to an entity with a type.
        let (entity_id, entity_name, entity_href, entity_metadata) = match self.entity_type {
            Some(_) => (
                text(body.entity_id),
                text(body.entity_name),
                text(body.entity_href),
                json(body.entity_metadata),
            ),
            None => (None, None, None, ""),
        };
        Ok(FlatEntry {
            pk: self.pk,
            seq: self.seq,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            channel: self.channel,
            action: self.action,
            detailed_action: self.detailed_action,
            description: self.description,
            outcome: self.outcome,
            actor_type: self.actor_type,
            actor_id: text(personal.actor_id),
            actor_name: text(personal.actor_name),
            actor_email: text(personal.actor_email),
            entity_type: self.entity_type,
            entity_id,
            entity_name,
            entity_ids: json(body.entity_ids),
            ip: text(personal.ip),
            user_agent: text(personal.user_agent),
            correlation_id: self.correlation_id,
            changes: json(body.changes),
            metadata: json(body.metadata),
            actor_href: text(body.actor_href),
            actor_metadata: json(body.actor_metadata),
            actor_original_type: text(body.actor_original_type),
            entity_href,
            entity_metadata,
            related_entities: json(body.related_entities),
            origin: json(body.origin),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use stele_core::chain::Personal;
    use stele_core::{Actor, Change, Context, Entity, NewEvent};

    use super::*;
    use crate::conformance::assert_flat_matches_entry;
    use crate::record::Body;

    /// An event with every part set, and text that JSON must escape or that serde_json could
    /// write more than one way (numbers, key order, non-ASCII).
    fn awkward_event() -> NewEvent {
        let metadata: BTreeMap<String, serde_json::Value> = [
            ("zeta", json!(0.1)),
            ("alpha", json!(1e300)),
            ("big", json!(18_446_744_073_709_551_615u64)),
            ("neg", json!(-7)),
            ("quote", json!("say \"hi\"\n\ttab \u{1} ctrl")),
            ("unicode", json!("Zoë 🙂 \u{2028}")),
            ("flag", json!(true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        NewEvent {
            occurred_at: 1_795_317_300_123,
            action: "update".into(),
            detailed_action: Some("user.role_changed".into()),
            channel: "admin".into(),
            description: Some("=SUM(A1), \"quoted\"".into()),
            outcome: Outcome::Failure,
            actor: Actor {
                kind: ActorType::User,
                id: Some("u_1".into()),
                name: Some("O'Brien \"Bob\"".into()),
                email: Some("bob@example.com".into()),
                href: Some("https://app.test/u?a=1&b=\"2\"".into()),
                metadata: metadata.clone(),
                original_type: Some("Service Account".into()),
            },
            entity: Some(Entity {
                kind: "User".into(),
                id: Some("u\\2".into()),
                name: Some("Ünïcode name".into()),
                href: Some("https://app.test/users/u%5C2".into()),
                metadata: [("é".to_string(), json!(-0.0))].into_iter().collect(),
            }),
            entity_ids: vec!["a,b".into(), "c;d".into()],
            context: Context {
                ip: Some("2001:db8::1".into()),
                user_agent: Some("Mozilla/5.0 (X11)".into()),
                correlation_id: Some("req-9".into()),
                source: Some("api".into()),
                ..Context::default()
            },
            changes: vec![Change {
                field: "role".into(),
                old: Some(json!({"z": 1, "a": [1.5, null, "x"]})),
                new: Some(json!("admin")),
            }],
            metadata,
            idempotency_key: None,
            origin: [
                ("protocol".to_string(), json!("retraced")),
                ("crud".to_string(), json!("u")),
            ]
            .into_iter()
            .collect(),
            related_entities: vec![
                Entity::new("Team", Some("t,1".into()), Some("\"Ops\"".into())),
                Entity {
                    metadata: [("n".to_string(), json!(1e21))].into_iter().collect(),
                    ..Entity::new("Doc", None, None)
                },
            ],
        }
    }

    fn stored(event: &NewEvent) -> (String, String) {
        (
            serde_json::to_string(&Body::of(event)).unwrap(),
            serde_json::to_string(&Personal::of(event)).unwrap(),
        )
    }

    fn row<'a>(event: &'a NewEvent, body: &'a str, personal: &'a str) -> StoredRow<'a> {
        StoredRow {
            pk: crate::record::pk_floor(event.occurred_at) + 3,
            seq: Seq::new(42),
            occurred_at: event.occurred_at,
            recorded_at: event.occurred_at + 5,
            action: &event.action,
            detailed_action: event.detailed_action.as_deref(),
            channel: &event.channel,
            actor_type: event.actor.kind,
            outcome: event.outcome,
            entity_type: event.entity.as_ref().map(|e| e.kind.as_str()),
            correlation_id: event.context.correlation_id.as_deref(),
            erased: false,
            description: event.description.as_deref(),
            personal,
            body,
        }
    }

    #[test]
    fn a_flat_row_says_what_the_entry_says() {
        let full = awkward_event();
        let mut bare = awkward_event();
        bare.detailed_action = None;
        bare.description = None;
        bare.actor = Actor::of_kind(ActorType::System);
        bare.entity = None;
        bare.entity_ids = vec![];
        bare.context = Context::default();
        bare.changes = vec![];
        bare.metadata = BTreeMap::new();
        for event in [full, bare] {
            let (body, personal) = stored(&event);
            let row = row(&event, &body, &personal);
            let entry = row.entry().unwrap();
            assert_eq!(entry.event.metadata, event.metadata);
            assert_flat_matches_entry(&entry, &row.flat().unwrap());
        }
    }

    /// Rows written before the personal column's keys were shortened read the same.
    #[test]
    fn a_personal_column_with_the_long_names_reads_the_same() {
        let event = awkward_event();
        let (body, personal) = stored(&event);
        let long = serde_json::to_string(&serde_json::json!({
            "actor_id": event.actor.id,
            "actor_name": event.actor.name,
            "actor_email": event.actor.email,
            "ip": event.context.ip,
            "user_agent": event.context.user_agent,
        }))
        .unwrap();
        assert_ne!(long, personal);
        let (short_row, long_row) = (row(&event, &body, &personal), row(&event, &body, &long));
        assert_eq!(long_row.entry().unwrap(), short_row.entry().unwrap());
        assert_flat_matches_entry(&short_row.entry().unwrap(), &long_row.flat().unwrap());
    }

    #[test]
    fn text_without_escapes_is_borrowed_not_copied() {
        let event = awkward_event();
        let (body, personal) = stored(&event);
        let flat = row(&event, &body, &personal).flat().unwrap();
        assert!(matches!(flat.actor_email, Some(Cow::Borrowed(_))));
        assert!(
            matches!(flat.actor_name, Some(Cow::Owned(_))),
            "escaped quotes"
        );
    }

    #[test]
    fn a_page_gives_back_its_rows_and_the_cursor_past_the_last() {
        let events: Vec<NewEvent> = (0..3)
            .map(|i| {
                let mut e = awkward_event();
                e.occurred_at -= i;
                if i == 1 {
                    e.detailed_action = None;
                }
                e
            })
            .collect();
        let texts: Vec<(String, String)> = events.iter().map(stored).collect();
        let mut page = RowPage::with_capacity(3);
        for (i, (e, (body, personal))) in events.iter().zip(&texts).enumerate() {
            page.push(&StoredRow {
                seq: Seq::new(10 - i as i64),
                ..row(e, body, personal)
            });
        }
        let request = PageRequest {
            filter: stele_core::filter::EventFilter::default(),
            limit: 2,
            cursor: None,
        };
        let page = page.finish(&request);
        assert_eq!(page.len(), 2);
        let rows: Vec<StoredRow<'_>> = page.iter().collect();
        assert_eq!(rows[1].detailed_action, None);
        assert_eq!(rows[1].body, texts[1].0);
        assert_eq!(rows[0].entry().unwrap().event, events[0]);
        let cursor = page.next_cursor.expect("a third row exists");
        assert_eq!(
            (cursor.seq, cursor.occurred_at),
            (Seq::new(9), events[1].occurred_at)
        );

        let last = RowPage::default().finish(&request);
        assert!(last.is_empty() && last.next_cursor.is_none());
    }

    #[test]
    fn a_corrupt_body_names_its_column() {
        let event = awkward_event();
        let (_, personal) = stored(&event);
        let row = row(&event, "{\"ch\": 5", &personal);
        assert_eq!(row.flat().unwrap_err().column, "body");
        assert_eq!(row.entry().unwrap_err().column, "body");
    }
}
