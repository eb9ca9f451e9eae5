//! Retraced's publisher search over the whole project: every group at once, as Retraced's
//! server answers `query()` from its client library. Stele keeps one trail per organization, so
//! the project's search is each group's search ([`super::search`]) merged in one order
//! (`occurred_at`, then the organization, then `seq`), with a cursor that holds where each group's
//! walk stands and a total that adds the groups' totals. It reads every group on every page, so
//! a project of more than [`MAX_GROUPS`] groups is refused: its searches name their group.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stele_core::{Entry, Seq};
use stele_store::{Organization, Store};

use super::plan_within;
use super::search::{self, Found, Paging, Position, SearchError};
use super::view::{self, EventView};
use crate::access::viewer::FixedFilters;

/// The most groups a project-wide search reads (each page reads each group once).
pub const MAX_GROUPS: usize = 100;

/// One page of a project-wide search.
#[derive(Debug, Clone)]
pub struct ProjectPage {
    /// Every group's matches, whatever the cursor, added up.
    pub total: u64,
    pub total_exact: bool,
    pub newest_first: bool,
    /// The page's events in the order walked, each with the cursor that continues after it.
    pub events: Vec<(String, EventView)>,
}

impl ProjectPage {
    /// Retraced's `hasPreviousPage`: walking newest first, and more matches than this page.
    pub fn has_previous_page(&self) -> bool {
        self.newest_first && self.total > self.events.len() as u64
    }

    /// Retraced's `hasNextPage`: walking oldest first, and more matches than this page.
    pub fn has_next_page(&self) -> bool {
        !self.newest_first && self.total > self.events.len() as u64
    }
}

/// Where each group's walk stands: its last entry shown, by organization id.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProjectCursor(HashMap<String, Position>);

impl ProjectCursor {
    /// Base64 of `org:ms,seq;…`, opaque to clients like Retraced's own.
    fn encode(&self) -> String {
        let mut parts: Vec<String> = self
            .0
            .iter()
            .map(|(org, p)| format!("{org}:{},{}", p.occurred_at, p.seq.get()))
            .collect();
        parts.sort();
        STANDARD.encode(parts.join(";"))
    }

    fn decode(cursor: &str) -> Result<ProjectCursor, SearchError> {
        let bad = || SearchError::Invalid("Invalid cursor".into());
        let text = STANDARD
            .decode(cursor.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let mut positions = HashMap::new();
        for part in text.split(';').filter(|p| !p.is_empty()) {
            let (org, at) = part.split_once(':').ok_or_else(bad)?;
            let (ms, seq) = at.split_once(',').ok_or_else(bad)?;
            let position = Position {
                occurred_at: ms.parse().map_err(|_| bad())?,
                seq: Seq::new(seq.parse().map_err(|_| bad())?),
            };
            positions.insert(org.to_string(), position);
        }
        Ok(ProjectCursor(positions))
    }
}

/// The project's search: `text` in every group of `groups`, one page of `size` from `cursor`
/// (`None`: from the start), newest first or oldest first.
pub async fn search_project(
    store: &dyn Store,
    groups: &[Organization],
    text: &str,
    newest_first: bool,
    size: usize,
    cursor: Option<&str>,
) -> Result<ProjectPage, SearchError> {
    if groups.len() > MAX_GROUPS {
        return Err(SearchError::Invalid(format!(
            "group.id: this project has {} groups, and a search reads at most {MAX_GROUPS} of \
             them at once; add group.id:<group> to the search",
            groups.len()
        )));
    }
    let start = cursor
        .filter(|c| !c.is_empty())
        .map(ProjectCursor::decode)
        .transpose()?
        .unwrap_or_default();
    let Some(plan) = plan_within(text, &FixedFilters::default())
        .map_err(|e| SearchError::Invalid(e.to_string()))?
    else {
        return Ok(ProjectPage {
            total: 0,
            total_exact: true,
            newest_first,
            events: Vec::new(),
        });
    };
    let mut total = 0;
    let mut total_exact = true;
    let mut candidates: Vec<(&Organization, Entry)> = Vec::new();
    for org in groups {
        let paging = Paging {
            newest_first,
            size,
            cursor: start.0.get(&org.id).copied(),
        };
        let found: Found = search::search(store, org.key, &plan, &paging).await?;
        total += found.total;
        total_exact &= found.total_exact;
        candidates.extend(found.entries.into_iter().map(|e| (org, e)));
    }
    // One order over every group: by time, then organization, then seq; backwards when walking
    // newest first. Each group's entries already come in that order, so the first `size` of the
    // merge are the page, and a group's walk goes on after its last entry taken.
    candidates.sort_by(|(a_org, a), (b_org, b)| {
        let order = a
            .event
            .occurred_at
            .cmp(&b.event.occurred_at)
            .then_with(|| a_org.key.get().cmp(&b_org.key.get()))
            .then_with(|| a.seq.cmp(&b.seq));
        if newest_first { order.reverse() } else { order }
    });
    candidates.truncate(size);
    let mut at = start;
    let events = candidates
        .iter()
        .map(|(org, entry)| {
            at.0.insert(org.id.clone(), Position::of(entry));
            (at.encode(), view::event_view(entry, org))
        })
        .collect();
    Ok(ProjectPage {
        total,
        total_exact,
        newest_first,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_it_was_written() {
        let cursor = ProjectCursor(HashMap::from([
            (
                "org_a".to_string(),
                Position {
                    occurred_at: 1_714_564_860_000,
                    seq: Seq::new(7),
                },
            ),
            (
                "org_b".to_string(),
                Position {
                    occurred_at: -5,
                    seq: Seq::new(1),
                },
            ),
        ]));
        assert_eq!(ProjectCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(ProjectCursor::decode("not base64!").is_err());
        assert!(ProjectCursor::decode(&STANDARD.encode("org_a:x,1")).is_err());
    }
}
