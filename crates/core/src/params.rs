//! Reading a list request's parameters (`GET /v1/events`, the console's filter bar, an
//! export's flags) into a [`PageRequest`]: the filters, the page size, the cursor, and `q` in the
//! query language of [`crate::query`] applied on top.

use crate::event::ActorType;
use crate::filter::{
    Cursor, DEFAULT_LIMIT, EventFilter, FilterError, MAX_LIMIT, parse_actor_types,
    parse_detailed_action,
};
use crate::query::SearchQuery;
use crate::time::{DayBound, Millis, parse_range_bound};

/// The list's filters as query parameters (an export echoes those given in its `filters`).
pub const FILTER_PARAMETERS: [&str; 13] = [
    "action",
    "detailed_action",
    "actor_type",
    "actor",
    "entity_type",
    "entity_id",
    "channel",
    "outcome",
    "correlation_id",
    "ip",
    "from",
    "to",
    "q",
];

/// Every parameter [`PageRequest::from_params`] reads: the filters, then the page size and the
/// cursor (the order the console's links write them in).
pub const PAGE_PARAMETERS: [&str; 15] = [
    FILTER_PARAMETERS[0],
    FILTER_PARAMETERS[1],
    FILTER_PARAMETERS[2],
    FILTER_PARAMETERS[3],
    FILTER_PARAMETERS[4],
    FILTER_PARAMETERS[5],
    FILTER_PARAMETERS[6],
    FILTER_PARAMETERS[7],
    FILTER_PARAMETERS[8],
    FILTER_PARAMETERS[9],
    FILTER_PARAMETERS[10],
    FILTER_PARAMETERS[11],
    FILTER_PARAMETERS[12],
    "limit",
    "cursor",
];

/// One page request: filter, page size and an optional cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub filter: EventFilter,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// Reads the list parameters. Parameters this function does not know are left to the caller
    /// (export adds `format`); empty values count as absent, as an HTML form sends them. `q` is
    /// read with the query language of [`crate::query`]; its terms may only repeat a filter the
    /// parameters set with the same value.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<PageRequest, FilterError> {
        let read = ReadParams::read(params, EventFilter::default())?;
        read.finish()
    }

    /// Reads the list parameters for one record's history: every actor type unless asked
    /// otherwise (the history should be complete), and the record's type and id in place of any
    /// `entity_type` or `entity_id` parameter. A `q` term naming another record is an error,
    /// as it would be against those parameters.
    pub fn for_record<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        entity_type: &str,
        entity_id: &str,
    ) -> Result<PageRequest, FilterError> {
        let every_actor = EventFilter {
            actor_types: ActorType::ALL.to_vec(),
            ..EventFilter::default()
        };
        let mut read = ReadParams::read(params, every_actor)?;
        read.request.filter.entity_type = Some(entity_type.to_string());
        read.request.filter.entity_id = Some(entity_id.to_string());
        for pinned in ["entity_type", "entity_id"] {
            if !read.given.contains(&pinned) {
                read.given.push(pinned);
            }
        }
        read.finish()
    }
}

/// The parameters read, before `q` is applied on top of them.
struct ReadParams<'a> {
    request: PageRequest,
    /// The filters a parameter set (by parameter name).
    given: Vec<&'static str>,
    q: Option<&'a str>,
}

impl<'a> ReadParams<'a> {
    fn read(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        defaults: EventFilter,
    ) -> Result<ReadParams<'a>, FilterError> {
        let mut f = defaults;
        let mut given: Vec<&'static str> = Vec::new();
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        let mut q = None;
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = || Some(value.to_string());
            let filter: &'static str = match key {
                "action" => {
                    f.action = text();
                    "action"
                }
                "detailed_action" => {
                    f.detailed_action = Some(parse_detailed_action(value));
                    "detailed_action"
                }
                "actor_type" => {
                    f.actor_types = parse_actor_types(value)?;
                    "actor_type"
                }
                "actor" => {
                    f.actor = text();
                    "actor"
                }
                "entity_type" => {
                    f.entity_type = text();
                    "entity_type"
                }
                "entity_id" => {
                    f.entity_id = text();
                    "entity_id"
                }
                "channel" => {
                    f.channel = text();
                    "channel"
                }
                "outcome" => {
                    f.outcome = Some(value.parse().map_err(|()| {
                        FilterError::new("outcome", "must be `success` or `failure`")
                    })?);
                    "outcome"
                }
                "correlation_id" => {
                    f.correlation_id = text();
                    "correlation_id"
                }
                "ip" => {
                    f.ip = text();
                    "ip"
                }
                "from" => {
                    f.from = Some(parse_bound("from", value, DayBound::Start)?);
                    "from"
                }
                "to" => {
                    f.to = Some(parse_bound("to", value, DayBound::End)?);
                    "to"
                }
                "q" => {
                    q = Some(value);
                    continue;
                }
                "limit" => {
                    limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            FilterError::new(
                                "limit",
                                format!("must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                    continue;
                }
                "cursor" => {
                    cursor = Some(value.parse::<Cursor>()?);
                    continue;
                }
                _ => continue,
            };
            if !given.contains(&filter) {
                given.push(filter);
            }
        }
        Ok(ReadParams {
            request: PageRequest {
                filter: f,
                limit,
                cursor,
            },
            given,
            q,
        })
    }

    /// Applies `q` (which is read only now, so that it meets every parameter whatever their
    /// order) and checks the time range.
    fn finish(mut self) -> Result<PageRequest, FilterError> {
        let f = &mut self.request.filter;
        let set_by_q = match self.q {
            Some(q) => SearchQuery::parse(q)?.apply(f, &self.given)?,
            None => Vec::new(),
        };
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from >= to
        {
            return Err(if set_by_q.contains(&"from") || set_by_q.contains(&"to") {
                FilterError::new(
                    "q",
                    "the `created` range is empty: it must start before it ends \
                     (including the `from` and `to` parameters)",
                )
            } else {
                FilterError::new("from", "must be earlier than `to`")
            });
        }
        Ok(self.request)
    }
}

fn parse_bound(field: &str, value: &str, bound: DayBound) -> Result<Millis, FilterError> {
    parse_range_bound(value, bound).ok_or_else(|| {
        FilterError::new(
            field,
            "must be an RFC 3339 timestamp or a date (YYYY-MM-DD)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name in [`PAGE_PARAMETERS`] is one the reader acts on (the API refuses the others):
    /// given a value it cannot use, it either refuses it or the request changes.
    #[test]
    fn every_page_parameter_is_read() {
        for name in PAGE_PARAMETERS {
            let read = PageRequest::from_params([(name, "~unusable~")]);
            match read {
                Err(_) => {}
                Ok(request) => assert_ne!(
                    request,
                    PageRequest::from_params([]).unwrap(),
                    "`{name}` was ignored"
                ),
            }
        }
        assert_eq!(
            PageRequest::from_params([("acton", "update")]).unwrap(),
            PageRequest::from_params([]).unwrap()
        );
    }
    use crate::filter::DetailedActionMatch;

    fn parse(q: &[(&str, &str)]) -> Result<PageRequest, FilterError> {
        PageRequest::from_params(q.iter().copied())
    }

    #[test]
    fn defaults_hide_system_actors_and_page_by_fifty() {
        let p = parse(&[]).unwrap();
        assert_eq!(p.limit, 50);
        assert!(!p.filter.actor_types.contains(&ActorType::System));
        assert_eq!(p.filter.actor_types.len(), 4);
    }

    #[test]
    fn actor_type_all_and_lists() {
        assert_eq!(
            parse(&[("actor_type", "all")]).unwrap().filter.actor_types,
            ActorType::ALL.to_vec()
        );
        assert_eq!(
            parse(&[("actor_type", "system, api")])
                .unwrap()
                .filter
                .actor_types,
            vec![ActorType::Api, ActorType::System]
        );
        assert_eq!(
            parse(&[("actor_type", "robot")]).unwrap_err().field,
            "actor_type"
        );
    }

    #[test]
    fn detailed_action_trailing_star_is_a_prefix() {
        let p = parse(&[("detailed_action", "printJob.*")]).unwrap();
        assert_eq!(
            p.filter.detailed_action,
            Some(DetailedActionMatch::Prefix("printJob.".into()))
        );
    }

    #[test]
    fn limit_out_of_range_names_the_field() {
        for bad in ["0", "501", "-1", "ten"] {
            assert_eq!(parse(&[("limit", bad)]).unwrap_err().field, "limit");
        }
        assert_eq!(parse(&[("limit", "500")]).unwrap().limit, 500);
    }

    #[test]
    fn q_terms_meet_the_parameters_whatever_their_order() {
        for params in [
            [("q", "action:update paper jam"), ("channel", "auth")],
            [("channel", "auth"), ("q", "action:update paper jam")],
        ] {
            let f = parse(&params).unwrap().filter;
            assert_eq!(f.action.as_deref(), Some("update"));
            assert_eq!(f.channel.as_deref(), Some("auth"));
            assert_eq!(f.q.as_deref(), Some("paper jam"));
        }
        for params in [
            [("q", "action:update"), ("action", "create")],
            [("action", "create"), ("q", "action:update")],
        ] {
            assert_eq!(parse(&params).unwrap_err().field, "q");
        }
        // An empty parameter is absent, so it is no conflict.
        assert!(parse(&[("action", " "), ("q", "action:update")]).is_ok());
    }

    #[test]
    fn q_actor_types_replace_the_default() {
        let f = parse(&[("q", "actor_type:system")]).unwrap().filter;
        assert_eq!(f.actor_types, vec![ActorType::System]);
    }

    #[test]
    fn an_empty_range_names_q_when_a_term_made_it() {
        let e = parse(&[("to", "2026-01-01"), ("q", "created:>2026-01-01")]).unwrap_err();
        assert_eq!(e.field, "q");
        assert!(e.message.contains("range is empty"), "{}", e.message);
        let f = parse(&[("q", "created:2026-01-01")]).unwrap().filter;
        assert_eq!(f.to.unwrap() - f.from.unwrap(), 86_400_000);
    }

    #[test]
    fn a_record_pins_its_entity_and_shows_every_actor_type() {
        let r = PageRequest::for_record([("entity_type", "Other")], "Printer", "42").unwrap();
        assert_eq!(r.filter.entity_type.as_deref(), Some("Printer"));
        assert_eq!(r.filter.entity_id.as_deref(), Some("42"));
        assert_eq!(r.filter.actor_types, ActorType::ALL.to_vec());
        let r = PageRequest::for_record(
            [("q", "actor_type:user entity:Printer:42")],
            "Printer",
            "42",
        )
        .unwrap();
        assert_eq!(r.filter.actor_types, vec![ActorType::User]);
        let e = PageRequest::for_record([("q", "entity_id:7")], "Printer", "42").unwrap_err();
        assert_eq!(e.field, "q");
    }

    #[test]
    fn from_must_precede_to() {
        assert_eq!(
            parse(&[("from", "2026-02-01"), ("to", "2026-01-01")])
                .unwrap_err()
                .field,
            "from"
        );
        assert!(parse(&[("from", "2026-01-01"), ("to", "2026-01-01")]).is_ok());
    }
}
