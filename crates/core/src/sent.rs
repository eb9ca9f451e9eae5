//! An event as a client sent it, read straight from the request body into typed fields.
//!
//! The checks in [`crate::validate`] must name *every* problem of an event, so reading the body
//! cannot stop at the first field of the wrong type, as a derived `Deserialize` would. The types
//! here accept any JSON in any position and keep what came: a string where the contract expects
//! text is a [`Scalar::Str`] borrowed from the body (owned only when it held escapes), an object
//! where it expects one is read into its struct ([`Shaped::Object`]), and anything else is kept
//! whole as a `serde_json::Value` ([`Scalar::Other`], [`Shaped::Other`], [`List::Other`]) so the
//! error can say what it was and the NUL check can look inside it. Keys the contract does not know
//! are kept with their values ([`SentEvent::unknown`]) for the same reasons.
//!
//! Only the parts whose content is the client's own JSON (`changes[].old`/`new`, `before`,
//! `after`, `metadata`) are read as `Value`, since that is what they are stored as.
//!
//! Everything here also reads from a `&Value` (serde_json's `Value` is a deserializer), so a
//! caller that already holds one uses the same path ([`crate::validate::parse_event`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::validate::FieldError;

/// A value where the contract expects a scalar (mostly text).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Number(Number),
    /// Borrowed from the request body unless the JSON string held escapes.
    Str(Cow<'a, str>),
    /// An array or an object, kept whole (boxed: it is rare, and keeps every field small).
    Other(Box<Value>),
}

impl Scalar<'_> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// What was sent, as an error message says it ("must be a string, not a number").
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Number(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Other(v) => type_name(v),
        }
    }
}

/// What was sent where the contract expects an object read as `T`.
#[derive(Debug, Clone, PartialEq)]
pub enum Shaped<T> {
    Object(T),
    /// Anything but an object, kept whole.
    Other(Box<Value>),
}

/// What was sent where the contract expects an array of `T`.
#[derive(Debug, Clone, PartialEq)]
pub enum List<T> {
    Items(Vec<T>),
    /// Anything but an array, kept whole.
    Other(Box<Value>),
}

/// The name of a JSON value's type as error messages say it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What every part of a sent event can say about itself, whatever its shape.
pub trait Sent {
    /// `null` counts as absent for the contract's optional fields.
    fn is_null(&self) -> bool;
    /// Adds an error for every key or string at or under `path` holding U+0000.
    fn find_nul(&self, path: &str, out: &mut Vec<FieldError>);
    /// Whether any key or string at or under it holds U+0000. Asked before [`Sent::find_nul`]
    /// is given a path, so that paths are only spelled out for values that hold one (making
    /// them for every key was a twentieth of ingest's request-side time).
    fn has_nul(&self) -> bool;
}

impl Sent for Value {
    fn is_null(&self) -> bool {
        Value::is_null(self)
    }

    fn find_nul(&self, path: &str, out: &mut Vec<FieldError>) {
        match self {
            Value::String(s) => nul_in_string(s, path, out),
            Value::Array(items) => nul_in_items(items, path, out),
            Value::Object(map) => {
                for (key, item) in map {
                    nul_under_key(key, item, path, out);
                }
            }
            _ => {}
        }
    }

    fn has_nul(&self) -> bool {
        match self {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(Sent::has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || v.has_nul()),
            _ => false,
        }
    }
}

impl Sent for Scalar<'_> {
    fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    fn find_nul(&self, path: &str, out: &mut Vec<FieldError>) {
        match self {
            Scalar::Str(s) => nul_in_string(s, path, out),
            Scalar::Other(v) => v.find_nul(path, out),
            _ => {}
        }
    }

    fn has_nul(&self) -> bool {
        match self {
            Scalar::Str(s) => s.contains('\0'),
            Scalar::Other(v) => v.has_nul(),
            _ => false,
        }
    }
}

impl<T: Sent> Sent for Shaped<T> {
    fn is_null(&self) -> bool {
        matches!(self, Shaped::Other(v) if v.is_null())
    }

    fn find_nul(&self, path: &str, out: &mut Vec<FieldError>) {
        match self {
            Shaped::Object(t) => t.find_nul(path, out),
            Shaped::Other(v) => v.find_nul(path, out),
        }
    }

    fn has_nul(&self) -> bool {
        match self {
            Shaped::Object(t) => t.has_nul(),
            Shaped::Other(v) => v.has_nul(),
        }
    }
}

impl<T: Sent> Sent for List<T> {
    fn is_null(&self) -> bool {
        matches!(self, List::Other(v) if v.is_null())
    }

    fn find_nul(&self, path: &str, out: &mut Vec<FieldError>) {
        match self {
            List::Items(items) => nul_in_items(items, path, out),
            List::Other(v) => v.find_nul(path, out),
        }
    }

    fn has_nul(&self) -> bool {
        match self {
            List::Items(items) => items.iter().any(Sent::has_nul),
            List::Other(v) => v.has_nul(),
        }
    }
}

/// The items of an array at `path`, each named by its index if it holds a NUL.
fn nul_in_items<T: Sent>(items: &[T], path: &str, out: &mut Vec<FieldError>) {
    for (i, item) in items.iter().enumerate() {
        if item.has_nul() {
            item.find_nul(&format!("{path}[{i}]"), out);
        }
    }
}

const NUL_MESSAGE: &str = "must not contain the NUL character (\\u0000)";

fn nul_in_string(s: &str, path: &str, out: &mut Vec<FieldError>) {
    if s.contains('\0') {
        out.push(FieldError::new(
            if path.is_empty() { "event" } else { path },
            NUL_MESSAGE,
        ));
    }
}

/// A key with NUL is named with the NUL escaped; otherwise its value is searched.
fn nul_under_key(key: &str, value: &impl Sent, path: &str, out: &mut Vec<FieldError>) {
    if key.contains('\0') {
        out.push(FieldError::new(
            join(path, &key.replace('\0', "\\u0000")),
            NUL_MESSAGE,
        ));
    } else if value.has_nul() {
        value.find_nul(&join(path, key), out);
    }
}

/// `path.key`, or `key` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// An object of the contract: its known keys read one by one.
pub trait SentObject<'de>: Default {
    /// Reads the value of `key` from `map` into the matching field, or into the unknown keys.
    fn take<A: MapAccess<'de>>(&mut self, key: Cow<'de, str>, map: &mut A) -> Result<(), A::Error>;
}

/// Keeps an unknown key with its value (the check names it); a repeated one is refused, as any
/// repeated key is.
fn keep_unknown<E: serde::de::Error>(
    unknown: &mut Vec<(String, Value)>,
    key: Cow<'_, str>,
    value: Value,
) -> Result<(), E> {
    if unknown.iter().any(|(k, _)| *k == key) {
        return Err(repeated(&key));
    }
    unknown.push((key.into_owned(), value));
    Ok(())
}

/// A JSON value as sent inside an event (`metadata`, `before`, `after`, a change's `old` and
/// `new`), read as a `Value` but refusing a key repeated in any object at any depth, as the
/// event's own objects do: serde_json's `Value` would keep the last one silently.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Json(pub Value);

impl std::ops::Deref for Json {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

impl Sent for Json {
    fn is_null(&self) -> bool {
        self.0.is_null()
    }

    fn find_nul(&self, path: &str, out: &mut Vec<FieldError>) {
        self.0.find_nul(path, out)
    }

    fn has_nul(&self) -> bool {
        self.0.has_nul()
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Json;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json(Value::Bool(v)))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json(Value::from(v)))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json(Value::from(v)))
            }

            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json(Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json(Value::String(v.to_string())))
            }

            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json(Value::String(v)))
            }

            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json(Value::Null))
            }

            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json(Value::Null))
            }

            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
                Json::deserialize(d)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(Json(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json(Value::Array(items)))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let Json(value) = map.next_value()?;
                    if out.contains_key(&*key) {
                        return Err(repeated(&key));
                    }
                    out.insert(key.into_owned(), value);
                }
                Ok(Json(Value::Object(out)))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A key sent twice in one object: JSON allows it and parsers keep one or the other, so an audit
/// event that has one would be ambiguous (`{"action": "update", "action": "delete"}`); it is
/// refused.
fn repeated<E: serde::de::Error>(key: &str) -> E {
    E::custom(format!(
        "the key `{key}` appears more than once in one object"
    ))
}

/// Declares the struct of one object of the event contract: an optional field per known key
/// (`None` when the key was not sent), the unknown keys, and how to read and NUL-check it.
macro_rules! sent_object {
    ($(#[$doc:meta])* $name:ident<$lt:lifetime> { $($key:literal => $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name<$lt> {
            $(pub $field: Option<$ty>,)*
            /// Keys the contract does not know, in the order sent, with their values.
            pub unknown: Vec<(String, Value)>,
        }

        impl<$lt> $name<$lt> {
            /// The keys the contract knows, in the order the documentation lists them.
            pub const KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl<'de: $lt, $lt> SentObject<'de> for $name<$lt> {
            fn take<A: MapAccess<'de>>(
                &mut self,
                key: Cow<'de, str>,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match &*key {
                    $($key => {
                        if self.$field.is_some() {
                            return Err(repeated(&key));
                        }
                        self.$field = Some(map.next_value()?)
                    })*
                    _ => keep_unknown(&mut self.unknown, key, map.next_value()?)?,
                }
                Ok(())
            }
        }

        impl Sent for $name<'_> {
            fn is_null(&self) -> bool {
                false
            }

            fn find_nul(&self, path: &str, out: &mut Vec<FieldError>) {
                $(if let Some(v) = &self.$field {
                    nul_under_key($key, v, path, out);
                })*
                for (key, value) in &self.unknown {
                    nul_under_key(key, value, path, out);
                }
            }

            fn has_nul(&self) -> bool {
                $(self.$field.as_ref().is_some_and(Sent::has_nul) ||)*
                    self.unknown.iter().any(|(k, v)| k.contains('\0') || v.has_nul())
            }
        }
    };
}

sent_object! {
    /// One event object as sent (see the event contract in docs/api.md).
    SentEvent<'a> {
        "occurred_at" => occurred_at: Scalar<'a>,
        "action" => action: Scalar<'a>,
        "detailed_action" => detailed_action: Scalar<'a>,
        "channel" => channel: Scalar<'a>,
        "description" => description: Scalar<'a>,
        "outcome" => outcome: Scalar<'a>,
        "actor" => actor: Shaped<SentActor<'a>>,
        "entity" => entity: Shaped<SentEntity<'a>>,
        "entity_ids" => entity_ids: List<Scalar<'a>>,
        "related_entities" => related_entities: List<Shaped<SentEntity<'a>>>,
        "context" => context: Shaped<SentContext<'a>>,
        "changes" => changes: List<Shaped<SentChange<'a>>>,
        "before" => before: Json,
        "after" => after: Json,
        "metadata" => metadata: Json,
        "idempotency_key" => idempotency_key: Scalar<'a>,
        // Part of the wire contract only: the organization a platform key's event is for. Its
        // caller takes it out before the event is checked (`validate::check_event` refuses it
        // otherwise); it is never stored nor part of the chain.
        "organization" => organization: Scalar<'a>,
    }
}

sent_object! {
    /// `actor` as sent.
    SentActor<'a> {
        "type" => kind: Scalar<'a>,
        "id" => id: Scalar<'a>,
        "name" => name: Scalar<'a>,
        "email" => email: Scalar<'a>,
        "href" => href: Scalar<'a>,
        "metadata" => metadata: Json,
    }
}

sent_object! {
    /// `entity` (or one of `related_entities`) as sent.
    SentEntity<'a> {
        "type" => kind: Scalar<'a>,
        "id" => id: Scalar<'a>,
        "name" => name: Scalar<'a>,
        "href" => href: Scalar<'a>,
        "metadata" => metadata: Json,
    }
}

sent_object! {
    /// `context` as sent.
    SentContext<'a> {
        "ip" => ip: Scalar<'a>,
        "user_agent" => user_agent: Scalar<'a>,
        "correlation_id" => correlation_id: Scalar<'a>,
        "request_id" => request_id: Scalar<'a>,
        "reason" => reason: Scalar<'a>,
        "source" => source: Scalar<'a>,
        "api_key_id" => api_key_id: Scalar<'a>,
        "impersonator" => impersonator: Shaped<SentImpersonator<'a>>,
        "location" => location: Scalar<'a>,
    }
}

sent_object! {
    /// `context.impersonator` as sent.
    SentImpersonator<'a> {
        "id" => id: Scalar<'a>,
        "email" => email: Scalar<'a>,
        "href" => href: Scalar<'a>,
        "metadata" => metadata: Json,
    }
}

sent_object! {
    /// One item of `changes` as sent. `old`/`new` sent as `null` are `Some(Value::Null)`: a
    /// field that was null is not one that did not exist.
    SentChange<'a> {
        "field" => field: Scalar<'a>,
        "old" => old: Json,
        "new" => new: Json,
    }
}

/// A request body of the native ingest endpoint: one event object, or `{"events": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub enum SentBody<'a> {
    One(Box<SentEvent<'a>>),
    /// `alone` is false when the object held other keys next to `events`.
    Batch {
        events: List<Shaped<SentEvent<'a>>>,
        alone: bool,
    },
    /// Anything but an object.
    NotObject,
}

/// An object key, borrowed from the body where it can be.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

fn read_object<'de, T: SentObject<'de>, A: MapAccess<'de>>(mut map: A) -> Result<T, A::Error> {
    let mut object = T::default();
    while let Some(Key(key)) = map.next_key()? {
        object.take(key, &mut map)?;
    }
    Ok(object)
}

fn read_array_value<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Value, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
    while let Some(item) = seq.next_element::<Value>()? {
        items.push(item);
    }
    Ok(Value::Array(items))
}

fn read_object_value<'de, A: MapAccess<'de>>(mut map: A) -> Result<Value, A::Error> {
    let mut object = Map::new();
    while let Some((key, value)) = map.next_entry::<String, Value>()? {
        if object.contains_key(&key) {
            return Err(repeated(&key));
        }
        object.insert(key, value);
    }
    Ok(Value::Object(object))
}

/// The visitor methods of a type that keeps whatever it did not expect as `Self::Value::from(a
/// Value)`: every JSON type except the ones the type lists to handle itself.
macro_rules! keep_as_value {
    (@bool) => {
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Value::Bool(v).into())
        }
    };
    (@numbers) => {
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Value::from(v).into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Value::from(v).into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Number::from_f64(v).map_or(Value::Null, Value::Number).into())
        }
    };
    (@strings) => {
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Value::String(v.to_owned()).into())
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Value::String(v).into())
        }
    };
    (@null) => {
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Value::Null.into())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Value::Null.into())
        }
    };
    (@array) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            read_array_value(seq).map(Into::into)
        }
    };
    (@object) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            read_object_value(map).map(Into::into)
        }
    };
    ($($part:ident),*) => {
        $(keep_as_value!(@$part);)*
    };
}

impl From<Value> for Scalar<'_> {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(b),
            Value::Number(n) => Scalar::Number(n),
            Value::String(s) => Scalar::Str(Cow::Owned(s)),
            other => Scalar::Other(Box::new(other)),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            keep_as_value!(bool, numbers, strings, null, array, object);
        }
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

impl<T> From<Value> for Shaped<T> {
    fn from(v: Value) -> Self {
        Shaped::Other(Box::new(v))
    }
}

impl<'de, T: SentObject<'de>> Deserialize<'de> for Shaped<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ShapedVisitor<T>(PhantomData<T>);
        impl<'de, T: SentObject<'de>> Visitor<'de> for ShapedVisitor<T> {
            type Value = Shaped<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shaped<T>, A::Error> {
                read_object(map).map(Shaped::Object)
            }
            keep_as_value!(bool, numbers, strings, null, array);
        }
        d.deserialize_any(ShapedVisitor(PhantomData))
    }
}

impl<T> From<Value> for List<T> {
    fn from(v: Value) -> Self {
        List::Other(Box::new(v))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List::Items(items))
            }
            keep_as_value!(bool, numbers, strings, null, object);
        }
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SentBody<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BodyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for BodyVisitor<'a> {
            type Value = SentBody<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SentBody<'a>, A::Error> {
                // Whether the body is a batch shows only once `events` is seen, so the other keys
                // are read as an event's meanwhile.
                let mut event = SentEvent::default();
                let mut events = None;
                let mut others = false;
                while let Some(Key(key)) = map.next_key()? {
                    if key == "events" {
                        if events.is_some() {
                            return Err(repeated(&key));
                        }
                        events = Some(map.next_value()?);
                    } else {
                        others = true;
                        event.take(key, &mut map)?;
                    }
                }
                Ok(match events {
                    Some(events) => SentBody::Batch {
                        events,
                        alone: !others,
                    },
                    None => SentBody::One(Box::new(event)),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SentBody<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SentBody::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<SentBody<'a>, E> {
                Ok(SentBody::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<SentBody<'a>, E> {
                Ok(SentBody::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<SentBody<'a>, E> {
                Ok(SentBody::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<SentBody<'a>, E> {
                Ok(SentBody::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<SentBody<'a>, E> {
                Ok(SentBody::NotObject)
            }
            fn visit_unit<E>(self) -> Result<SentBody<'a>, E> {
                Ok(SentBody::NotObject)
            }
        }
        d.deserialize_any(BodyVisitor(PhantomData))
    }
}

impl<'a> SentEvent<'a> {
    /// Reads one event from JSON text; a syntax error is the only failure.
    pub fn from_json(json: &'a [u8]) -> Result<Shaped<SentEvent<'a>>, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

impl<'a> SentBody<'a> {
    /// Reads a request body from JSON text; a syntax error is the only failure.
    pub fn from_json(json: &'a [u8]) -> Result<SentBody<'a>, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(json: &str) -> SentEvent<'_> {
        match SentEvent::from_json(json.as_bytes()).unwrap() {
            Shaped::Object(e) => e,
            Shaped::Other(v) => panic!("not an object: {v}"),
        }
    }

    #[test]
    fn strings_are_borrowed_from_the_body_unless_escaped() {
        let e = event(r#"{"action": "create", "description": "a \"quoted\" word"}"#);
        assert!(matches!(
            e.action,
            Some(Scalar::Str(Cow::Borrowed("create")))
        ));
        assert!(
            matches!(e.description, Some(Scalar::Str(Cow::Owned(ref s))) if s == "a \"quoted\" word")
        );
    }

    #[test]
    fn every_shape_is_kept_where_another_was_expected() {
        let e = event(
            r#"{"action": [1, "a"], "actor": "me", "entity_ids": {"a": 1},
                "changes": [1, {"field": "x", "old": null}], "colour": "red", "outcome": 2.5}"#,
        );
        assert_eq!(e.action, Some(Scalar::Other(Box::new(json!([1, "a"])))));
        assert_eq!(e.actor, Some(Shaped::Other(Box::new(json!("me")))));
        assert_eq!(e.entity_ids, Some(List::Other(Box::new(json!({"a": 1})))));
        let Some(List::Items(changes)) = &e.changes else {
            panic!("changes: {:?}", e.changes)
        };
        assert_eq!(changes[0], Shaped::Other(Box::new(json!(1))));
        let Shaped::Object(change) = &changes[1] else {
            panic!("{:?}", changes[1])
        };
        assert_eq!(change.old, Some(Json(Value::Null)));
        assert_eq!(change.new, None);
        assert_eq!(e.unknown, vec![("colour".to_string(), json!("red"))]);
        assert_eq!(e.outcome.as_ref().map(Scalar::type_name), Some("a number"));
    }

    #[test]
    fn a_repeated_key_is_refused_wherever_it_is() {
        // An audit event must not be ambiguous: which of two values counts differs by parser.
        for text in [
            r#"{"action": "update", "action": "delete"}"#,
            r#"{"action": "a", "x": 1, "y": 2, "x": 3}"#,
            r#"{"action": "a", "actor": {"type": "user", "id": "u1", "id": "u2"}}"#,
            r#"{"action": "a", "context": {"ip": "::1", "impersonator": {"id": "a", "id": "b"}}}"#,
            r#"{"action": "a", "entity": {"type": "T", "type": "U"}}"#,
            r#"{"action": "a", "changes": [{"field": "f", "new": 1, "new": 2}]}"#,
            // Inside the JSON values too, at any depth.
            r#"{"action": "a", "metadata": {"plan": "free", "plan": "pro"}}"#,
            r#"{"action": "a", "after": {"user": {"role": "member", "role": "admin"}}}"#,
            r#"{"action": "a", "before": [{"k": 1, "k": 1}]}"#,
            r#"{"action": "a", "actor": {"type": "user", "metadata": {"a": 1, "a": 2}}}"#,
            r#"{"action": "a", "changes": [{"field": "f", "old": {"x": {"y": 1, "y": 2}}}]}"#,
        ] {
            let e = SentEvent::from_json(text.as_bytes()).unwrap_err();
            assert!(
                e.to_string().contains("appears more than once"),
                "{text}: {e}"
            );
        }
        for body in [
            &br#"{"events": [{"action": "a", "action": "b"}]}"#[..],
            br#"{"events": [{"action": "a"}], "events": []}"#,
        ] {
            assert!(SentBody::from_json(body).is_err());
        }
    }

    #[test]
    fn a_body_is_one_event_a_batch_or_neither() {
        assert!(matches!(
            SentBody::from_json(br#"{"action": "a"}"#).unwrap(),
            SentBody::One(e) if e.action.is_some()
        ));
        let batch = SentBody::from_json(br#"{"events": [{"action": "a"}, 7]}"#).unwrap();
        let SentBody::Batch {
            events: List::Items(events),
            alone: true,
        } = batch
        else {
            panic!("{batch:?}")
        };
        assert_eq!(events.len(), 2);
        assert!(matches!(
            SentBody::from_json(br#"{"action": "a", "events": []}"#).unwrap(),
            SentBody::Batch { alone: false, .. }
        ));
        assert!(matches!(
            SentBody::from_json(br#"[{"action": "a"}]"#).unwrap(),
            SentBody::NotObject
        ));
        assert!(SentBody::from_json(br#"{"action": "#).is_err());
    }

    #[test]
    fn a_value_reads_the_same_as_its_text() {
        let text = r#"{"action": "a", "actor": {"type": "user", "id": 7}, "metadata": {"k": [1]},
                       "context": {"impersonator": {"email": "e"}}, "zzz": null}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let from_value = match Shaped::<SentEvent>::deserialize(&value).unwrap() {
            Shaped::Object(e) => e,
            Shaped::Other(v) => panic!("{v}"),
        };
        assert_eq!(from_value, event(text));
    }

    #[test]
    fn nul_is_found_in_keys_strings_and_values_of_the_wrong_shape() {
        let e = event(
            r#"{"action": "a\u0000", "actor": {"type": ["x\u0000"]}, "metadata": {"k\u0000": 1},
                "changes": [{"field": "f", "new": {"deep": "\u0000"}}], "odd\u0000": 1, "ok": "\u0000"}"#,
        );
        let mut out = Vec::new();
        e.find_nul("", &mut out);
        let fields: Vec<_> = out.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "action",
                "actor.type[0]",
                "changes[0].new.deep",
                "metadata.k\\u0000",
                "odd\\u0000",
                "ok"
            ]
        );
    }
}
