//! Field-level diff of `before`/`after` objects into [`Change`]s.
//!
//! Both objects are first *flattened* into dotted paths: a nested object contributes its fields
//! under `parent.child` (`{"address": {"city": "X"}}` gives the field `address.city`), recursively.
//! Leaves are compared whole: scalars, arrays, empty objects and binary values
//! (`{"$binary": …}`, see [`crate::redact::is_binary`]).
//!
//! One change is emitted per path whose value differs: present on both sides with different
//! values gives `old` and `new`; present only after gives `new` alone (a create has only these);
//! present only before gives `old` alone (a delete has only these). Unchanged fields are left out
//! and the output is sorted by path, so the same input always gives the same changes.
//!
//! The diff works on raw values, so a changed password is detected; redaction comes afterwards
//! ([`crate::redact::RedactionRules::redact_changes`]).
//!
//! A key that itself contains a dot can collide with a nested path (`{"a.b": 1, "a": {"b": 2}}`).
//! Rather than let one value hide the other, the colliding values of such a path are gathered
//! into one JSON array (in the objects' key order) and compared as that array.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::event::Change;
use crate::redact::is_binary;

/// The changes that turn `before` into `after`, sorted by field path. `None` for `before` is a
/// create (only `new`s), `None` for `after` a delete (only `old`s).
pub fn diff(
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
) -> Vec<Change> {
    let before = before.map(flatten_ref).unwrap_or_default();
    let after = after.map(flatten_ref).unwrap_or_default();

    let mut changes = Vec::new();
    let mut b = before.into_iter().peekable();
    let mut a = after.into_iter().peekable();
    loop {
        let order = match (b.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((bp, _)), Some((ap, _))) => bp.cmp(ap),
        };
        match order {
            Ordering::Less => {
                if let Some((field, old)) = b.next() {
                    changes.push(Change {
                        field,
                        old: Some(old.into_value().into_owned()),
                        new: None,
                    });
                }
            }
            Ordering::Greater => {
                if let Some((field, new)) = a.next() {
                    changes.push(Change {
                        field,
                        old: None,
                        new: Some(new.into_value().into_owned()),
                    });
                }
            }
            Ordering::Equal => {
                if let (Some((field, old)), Some((_, new))) = (b.next(), a.next()) {
                    let (old, new) = (old.into_value(), new.into_value());
                    if old != new {
                        changes.push(Change {
                            field,
                            old: Some(old.into_owned()),
                            new: Some(new.into_owned()),
                        });
                    }
                }
            }
        }
    }
    changes
}

/// An object flattened to its leaves by dotted path (see the module docs).
pub fn flatten(object: &Map<String, Value>) -> BTreeMap<String, Value> {
    flatten_ref(object)
        .into_iter()
        .map(|(path, leaf)| (path, leaf.into_value().into_owned()))
        .collect()
}

/// Whether a value is compared whole rather than recursed into.
fn is_leaf(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty() || is_binary(value),
        _ => true,
    }
}

/// The values found at one path: one, or several when dotted keys collide.
enum Leaf<'a> {
    One(&'a Value),
    Many(Vec<&'a Value>),
}

impl<'a> Leaf<'a> {
    fn push(&mut self, value: &'a Value) {
        match self {
            Leaf::One(first) => *self = Leaf::Many(vec![*first, value]),
            Leaf::Many(values) => values.push(value),
        }
    }

    fn into_value(self) -> Cow<'a, Value> {
        match self {
            Leaf::One(v) => Cow::Borrowed(v),
            Leaf::Many(vs) => Cow::Owned(Value::Array(vs.into_iter().cloned().collect())),
        }
    }
}

fn flatten_ref(object: &Map<String, Value>) -> BTreeMap<String, Leaf<'_>> {
    let mut out = BTreeMap::new();
    flatten_into(object, "", &mut out);
    out
}

fn flatten_into<'a>(
    object: &'a Map<String, Value>,
    prefix: &str,
    out: &mut BTreeMap<String, Leaf<'a>>,
) {
    for (key, value) in object {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if is_leaf(value) {
            match out.get_mut(&path) {
                None => {
                    out.insert(path, Leaf::One(value));
                }
                Some(leaf) => leaf.push(value),
            }
        } else if let Value::Object(nested) = value {
            flatten_into(nested, &path, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn change(field: &str, old: Option<Value>, new: Option<Value>) -> Change {
        Change {
            field: field.into(),
            old,
            new,
        }
    }

    #[test]
    fn update_lists_only_changed_fields_sorted() {
        let before = obj(json!({"name": "Ada", "role": "admin", "age": 36, "tags": ["a"]}));
        let after =
            obj(json!({"name": "Ada", "role": "owner", "tags": ["a", "b"], "email": "a@x"}));
        assert_eq!(
            diff(Some(&before), Some(&after)),
            vec![
                change("age", Some(json!(36)), None),
                change("email", None, Some(json!("a@x"))),
                change("role", Some(json!("admin")), Some(json!("owner"))),
                change("tags", Some(json!(["a"])), Some(json!(["a", "b"]))),
            ]
        );
    }

    #[test]
    fn nested_objects_become_dotted_paths() {
        let before = obj(json!({"address": {"city": "Paris", "zip": "75001"}}));
        let after = obj(json!({"address": {"city": "Lyon", "zip": "75001"}}));
        assert_eq!(
            diff(Some(&before), Some(&after)),
            vec![change(
                "address.city",
                Some(json!("Paris")),
                Some(json!("Lyon"))
            )]
        );
    }

    #[test]
    fn create_has_only_new_and_delete_only_old() {
        let rec = obj(json!({"name": "Printer 1", "spec": {"dpi": 600}, "on": null}));
        let created = diff(None, Some(&rec));
        assert_eq!(
            created,
            vec![
                change("name", None, Some(json!("Printer 1"))),
                change("on", None, Some(Value::Null)),
                change("spec.dpi", None, Some(json!(600))),
            ]
        );
        let deleted = diff(Some(&rec), None);
        assert!(deleted.iter().all(|c| c.old.is_some() && c.new.is_none()));
        assert_eq!(deleted.len(), 3);
        assert!(diff(None, None).is_empty());
    }

    #[test]
    fn binary_and_empty_objects_are_leaves() {
        let before = obj(json!({"avatar": {"$binary": "AAEC"}, "prefs": {}}));
        let after = obj(json!({"avatar": {"$binary": "AAED"}, "prefs": {"theme": "dark"}}));
        assert_eq!(
            diff(Some(&before), Some(&after)),
            vec![
                change(
                    "avatar",
                    Some(json!({"$binary": "AAEC"})),
                    Some(json!({"$binary": "AAED"}))
                ),
                change("prefs", Some(json!({})), None),
                change("prefs.theme", None, Some(json!("dark"))),
            ]
        );
    }

    #[test]
    fn a_leaf_turning_into_an_object_is_a_removal_and_additions() {
        let before = obj(json!({"a": 1}));
        let after = obj(json!({"a": {"b": 2}}));
        assert_eq!(
            diff(Some(&before), Some(&after)),
            vec![
                change("a", Some(json!(1)), None),
                change("a.b", None, Some(json!(2)))
            ]
        );
    }

    #[test]
    fn colliding_dotted_keys_do_not_hide_each_other() {
        let before = obj(json!({"a.b": 1, "a": {"b": 1}}));
        let after = obj(json!({"a.b": 2, "a": {"b": 1}}));
        let changes = diff(Some(&before), Some(&after));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "a.b");
        assert_ne!(changes[0].old, changes[0].new);
    }

    #[test]
    fn flatten_lists_leaves() {
        let f = flatten(&obj(json!({"a": {"b": {"c": 1}, "d": []}, "e": {}})));
        let keys: Vec<_> = f.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a.b.c", "a.d", "e"]);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[ab.$]{0,3}|\\$binary", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[abc.]{0,3}", arb_json(), 0..6)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn diff_of_an_object_with_itself_is_empty(x in arb_object()) {
            prop_assert!(diff(Some(&x), Some(&x)).is_empty());
        }

        #[test]
        fn applying_the_diff_to_before_gives_after(
            before in prop::option::of(arb_object()),
            after in prop::option::of(arb_object()),
        ) {
            let changes = diff(before.as_ref(), after.as_ref());
            let mut state = before.as_ref().map(flatten).unwrap_or_default();
            for c in &changes {
                prop_assert!(c.old.is_some() || c.new.is_some());
                prop_assert_ne!(&c.old, &c.new);
                prop_assert_eq!(c.old.as_ref(), state.get(&c.field), "old must be the before value");
                match &c.new {
                    Some(v) => state.insert(c.field.clone(), v.clone()),
                    None => state.remove(&c.field),
                };
            }
            prop_assert_eq!(state, after.as_ref().map(flatten).unwrap_or_default());
            prop_assert!(changes.windows(2).all(|w| w[0].field < w[1].field), "sorted, one per path");
            if before.is_none() {
                prop_assert!(changes.iter().all(|c| c.old.is_none()));
            }
            if after.is_none() {
                prop_assert!(changes.iter().all(|c| c.new.is_none()));
            }
        }
    }
}
