#!/usr/bin/env python3
"""Independent verifier for Stele proof documents, written from docs/integrity.md.

It uses the Python standard library only and shares no code with Stele. Given a proof document

  * an inclusion proof (GET /v1/events/{id}/proof), it recomputes the canonical JSON, the
    event bytes (stele-event-v2 with its per-value commitments, or stele-event-v1 for entries
    written before it), the event digest, the entry hash (stele-entry-v1) from
    prev_hash and personal_digest, the RFC 6962 leaf hash and the audit path up to the
    checkpoint's merkle_root, and rebuilds the checkpoint's signing bytes;
  * a consistency proof (GET /v1/integrity/consistency?from=&to=), it checks that the later
    checkpoint's tree extends the earlier one (RFC 9162 section 2.1.4.2) and rebuilds both
    checkpoints' signing bytes.

Checkpoint signatures (Ed25519) are checked only when --public-key is given; the key must come
from a source you trust (a copy published outside the server, not the proof itself). The
Ed25519 verification below is a small pure-Python implementation of RFC 8032 section 5.1.7 with
the strict checks of ed25519-dalek's verify_strict; `stele proof verify FILE --public-key HEX`
checks the same signature with a mainstream library if you prefer not to rely on it.

Usage:
  python3 tools/independent_verify.py PROOF.json [--public-key HEX] [--explain]
  python3 tools/independent_verify.py --self-test

Exit status: 0 OK, 1 INVALID, 2 usage error or unreadable file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import re
import sys

# --------------------------------------------------------------------------------------------
# JSON input: numbers are kept as their source text, duplicate keys are refused.


class Num:
    """A JSON number as written in the document."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def is_integer_literal(self) -> bool:
        return not any(c in self.text for c in ".eE")

    def __repr__(self) -> str:
        return self.text


class Invalid(Exception):
    """The document does not verify; the message says why."""


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise Invalid(f"duplicate key {key!r} in a JSON object: the document is ambiguous")
        out[key] = value
    return out


def _constant(name: str):
    raise Invalid(f"{name} is not JSON")


def load_json(text: str):
    return json.loads(text, object_pairs_hook=_pairs, parse_int=Num, parse_float=Num, parse_constant=_constant)


# --------------------------------------------------------------------------------------------
# Canonical JSON (docs/integrity.md, "Canonical JSON").

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)


def canonical_number(n: Num) -> str:
    """Integers that fit u64 (or i64 when negative) in decimal; every other number as an IEEE
    754 double in the shortest round-trip form (see format_double)."""
    if n.is_integer_literal():
        value = int(n.text)
        if n.text.startswith("-") and value == 0:
            return format_double(-0.0)  # "-0" is a double: -0.0
        if 0 <= value <= U64_MAX or I64_MIN <= value < 0:
            return str(value)
        return format_double(float(value))
    return format_double(float(n.text))


def format_double(f: float) -> str:
    """Shortest digits that read back as the same double, written as:
    fixed notation when the decimal exponent E (f = d.ddd x 10^E) is in -5..=15, with ".0" after
    an integral value; otherwise d.ddde+E / d.ddde-E (no '.' for one digit, exponent without
    leading zeros, always signed)."""
    if f != f or f in (float("inf"), float("-inf")):
        raise Invalid("a number is out of the range of a double")
    if f == 0.0:
        return "-0.0" if str(f).startswith("-") else "0.0"
    sign = "-" if f < 0 else ""
    # repr() gives the shortest round-trip digits (David Gay's algorithm, Python >= 3.1).
    mantissa, _, exp = repr(abs(f)).partition("e")
    whole, _, frac = mantissa.partition(".")
    all_digits = whole + frac
    leading_zeros = len(all_digits) - len(all_digits.lstrip("0"))
    exponent = (int(exp) if exp else 0) + len(whole) - 1 - leading_zeros
    digits = all_digits.strip("0")
    n = len(digits)
    if -5 <= exponent <= 15:
        if n - 1 <= exponent:
            text = digits + "0" * (exponent - (n - 1)) + ".0"
        elif exponent >= 0:
            text = digits[: exponent + 1] + "." + digits[exponent + 1 :]
        else:
            text = "0." + "0" * (-exponent - 1) + digits
    else:
        text = digits[0] + ("." + digits[1:] if n > 1 else "")
        text += "e" + ("+" if exponent >= 0 else "-") + str(abs(exponent))
    return sign + text


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def canonical_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise Invalid("a string holds a lone UTF-16 surrogate, which is not Unicode text")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_json(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Num):
        return canonical_number(value)
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8", "surrogatepass"))
        return "{" + ",".join(canonical_string(k) + ":" + canonical_json(value[k]) for k in keys) + "}"
    raise TypeError(type(value))


# --------------------------------------------------------------------------------------------
# Reading the entry as the API shows it, with the same rules as the encoding.

ENTRY_KEYS = {
    "id", "seq", "occurred_at", "recorded_at", "action", "detailed_action", "channel",
    "description", "outcome", "actor", "entity", "entity_ids", "context", "changes", "metadata",
    "related_entities", "origin",
}
ACTOR_TYPES = {"user", "api", "webhook", "system", "scheduler"}
OUTCOMES = {"success", "failure"}
CONTEXT_TEXT_KEYS = ["ip", "user_agent", "correlation_id", "request_id", "reason", "source", "api_key_id", "location"]
PERSONAL_CONTEXT_KEYS = {"ip", "user_agent"}
ENTITY_KEYS = {"type", "id", "name", "href", "metadata"}


def need(cond: bool, message: str):
    if not cond:
        raise Invalid(message)


def only_keys(obj: dict, allowed, where: str):
    extra = sorted(set(obj) - set(allowed))
    need(not extra, f"{where} has {', '.join(map(repr, extra))}, which the stele-event-v1 encoding does "
         "not cover: the proof would show data it does not prove")


def opt_text(obj: dict, key: str, where: str):
    """An optional string: absent and null mean absent."""
    value = obj.get(key)
    need(value is None or isinstance(value, str), f"{where}.{key} must be a string or null")
    return value


def int_value(value, where: str) -> int:
    need(isinstance(value, Num) and value.is_integer_literal(), f"{where} must be an integer")
    return int(value.text)


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def timestamp(value, where: str) -> str:
    """RFC 3339 with any offset, normalized to UTC with exactly three fraction digits and 'Z'
    (digits beyond milliseconds are dropped, as the encoding keeps milliseconds)."""
    need(isinstance(value, str), f"{where} must be an RFC 3339 string")
    m = _RFC3339.match(value)
    need(m is not None, f"{where} is not an RFC 3339 timestamp: {value!r}")
    y, mo, d, h, mi, s, frac, off = m.groups()
    if off in ("Z", "z"):
        tz = _dt.timezone.utc
    else:
        sign = 1 if off[0] == "+" else -1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
    try:
        t = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    except ValueError as e:
        raise Invalid(f"{where}: {e}") from None
    delta = t - _EPOCH
    ms = (delta.days * 86400 + delta.seconds) * 1000 + int(((frac or "") + "000")[:3])
    u = _EPOCH + _dt.timedelta(milliseconds=ms)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond // 1000)


def read_entry(entry) -> dict:
    """The fields the encoding needs, checked for type; personal fields are returned apart."""
    need(isinstance(entry, dict), "entry must be an object")
    only_keys(entry, ENTRY_KEYS, "entry")
    for key in ("id", "seq", "occurred_at", "recorded_at", "action", "channel", "outcome", "actor"):
        need(key in entry, f"entry.{key} is missing")
    need(isinstance(entry["id"], str), "entry.id must be a string")
    need(isinstance(entry["action"], str), "entry.action must be a string")
    need(isinstance(entry["channel"], str), "entry.channel must be a string")
    need(entry["outcome"] in OUTCOMES, "entry.outcome must be success or failure")

    actor = entry["actor"]
    need(isinstance(actor, dict), "entry.actor must be an object")
    only_keys(actor, {"type", "id", "name", "email", "href", "metadata", "original_type"}, "entry.actor")
    need(actor.get("type") in ACTOR_TYPES, "entry.actor.type must be one of " + ", ".join(sorted(ACTOR_TYPES)))
    personal = {
        "actor.id": opt_text(actor, "id", "entry.actor"),
        "actor.name": opt_text(actor, "name", "entry.actor"),
        "actor.email": opt_text(actor, "email", "entry.actor"),
    }
    # The fields added to the model later (the 16th field of the encoding, see widened_field).
    widened = {}
    widened_actor = {}
    put(widened_actor, "href", opt_text(actor, "href", "entry.actor"))
    put(widened_actor, "metadata", object_of(actor, "metadata", "entry.actor"))
    put(widened_actor, "original_type", opt_text(actor, "original_type", "entry.actor"))
    put(widened, "actor", widened_actor)

    entity = entry.get("entity")
    if entity is not None:
        need(isinstance(entity, dict), "entry.entity must be an object or null")
        only_keys(entity, ENTITY_KEYS, "entry.entity")
        need(isinstance(entity.get("type"), str), "entry.entity.type must be a string")
        widened_entity = {}
        put(widened_entity, "href", opt_text(entity, "href", "entry.entity"))
        put(widened_entity, "metadata", object_of(entity, "metadata", "entry.entity"))
        put(widened, "entity", widened_entity)
        entity = (entity["type"], opt_text(entity, "id", "entry.entity"), opt_text(entity, "name", "entry.entity"))

    related = entry.get("related_entities", [])
    need(isinstance(related, list), "entry.related_entities must be a list")
    widened_related = []
    for i, one in enumerate(related):
        where = f"entry.related_entities[{i}]"
        need(isinstance(one, dict), f"{where} must be an object")
        only_keys(one, ENTITY_KEYS, where)
        need(isinstance(one.get("type"), str), f"{where}.type must be a string")
        item = {"type": one["type"]}
        for key in ("id", "name", "href"):
            put(item, key, opt_text(one, key, where))
        put(item, "metadata", object_of(one, "metadata", where))
        widened_related.append(item)
    put(widened, "related_entities", widened_related)
    put(widened, "origin", object_of(entry, "origin", "entry"))

    entity_ids = entry.get("entity_ids", [])
    need(isinstance(entity_ids, list) and all(isinstance(i, str) for i in entity_ids),
         "entry.entity_ids must be a list of strings")

    context = entry.get("context", {})
    need(isinstance(context, dict), "entry.context must be an object")
    only_keys(context, CONTEXT_TEXT_KEYS + ["impersonator"], "entry.context")
    covered_context = {}
    for key in CONTEXT_TEXT_KEYS:
        value = opt_text(context, key, "entry.context")
        if key in PERSONAL_CONTEXT_KEYS:
            personal["context." + key] = value
        elif value is not None:
            covered_context[key] = value
    impersonator = context.get("impersonator")
    if impersonator is not None:
        need(isinstance(impersonator, dict), "entry.context.impersonator must be an object")
        only_keys(impersonator, {"id", "email"}, "entry.context.impersonator")
        covered_context["impersonator"] = {
            k: v for k in ("id", "email")
            if (v := opt_text(impersonator, k, "entry.context.impersonator")) is not None
        }

    changes = entry.get("changes", [])
    need(isinstance(changes, list), "entry.changes must be a list")
    for i, change in enumerate(changes):
        need(isinstance(change, dict), f"entry.changes[{i}] must be an object")
        only_keys(change, {"field", "old", "new"}, f"entry.changes[{i}]")
        need(isinstance(change.get("field"), str), f"entry.changes[{i}].field must be a string")

    metadata = entry.get("metadata", {})
    need(isinstance(metadata, dict), "entry.metadata must be an object")

    seq = int_value(entry["seq"], "entry.seq")
    need(seq >= 1, "entry.seq must be at least 1")
    return {
        "id": entry["id"],
        "seq": seq,
        "occurred_at": timestamp(entry["occurred_at"], "entry.occurred_at"),
        "recorded_at": timestamp(entry["recorded_at"], "entry.recorded_at"),
        "action": entry["action"],
        "detailed_action": opt_text(entry, "detailed_action", "entry"),
        "channel": entry["channel"],
        "description": opt_text(entry, "description", "entry"),
        "outcome": entry["outcome"],
        "actor_type": actor["type"],
        "entity": entity,
        "entity_ids": entity_ids,
        "context": covered_context,
        "changes": changes,
        "metadata": metadata,
        "widened": widened,
        "personal": personal,
        "raw": entry,
    }


def put(obj: dict, key: str, value):
    """Adds a member of the widened field unless it holds nothing (absent, null, {} or [])."""
    if value is not None and value != {} and value != []:
        obj[key] = value


def object_of(obj: dict, key: str, where: str) -> dict:
    value = obj.get(key, {})
    need(isinstance(value, dict), f"{where}.{key} must be an object")
    return value


# --------------------------------------------------------------------------------------------
# The chain encoding (docs/integrity.md, "The encoding").

EVENT_FORMAT = b"stele-event-v1"
ENTRY_FORMAT = b"stele-entry-v1"
GENESIS_FORMAT = b"stele-chain-v1"
ABSENT = b"\xff\xff\xff\xff"


def field(value) -> bytes:
    """F(x): 4-byte big-endian length and the UTF-8 bytes, or FF FF FF FF when absent."""
    if value is None:
        return ABSENT
    data = value.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def event_fields(e: dict, personal_digest_hex: str):
    """(name, value) in encoding order; value None means absent."""
    kind, eid, ename = e["entity"] if e["entity"] is not None else (None, None, None)
    return [
        ("occurred_at", e["occurred_at"]),
        ("action", e["action"]),
        ("detailed_action", e["detailed_action"]),
        ("channel", e["channel"]),
        ("description", e["description"]),
        ("outcome", e["outcome"]),
        ("actor.type", e["actor_type"]),
        ("personal_digest", personal_digest_hex),
        ("entity.type", kind),
        ("entity.id", eid),
        ("entity.name", ename),
        ("entity_ids", canonical_json(e["entity_ids"])),
        ("context", canonical_json(e["context"])),
        ("changes", canonical_json(e["changes"])),
        ("metadata", canonical_json(e["metadata"])),
    ] + widened_field(e)


def widened_field(e: dict):
    """The 16th field, only for an entry that uses any of the fields added to the model after
    stele-event-v1 was first written: the canonical JSON of {"actor": {href, metadata,
    original_type}, "entity": {href, metadata}, "origin", "related_entities"}, members that hold
    nothing left out. An entry that uses none of them has fifteen fields, as before."""
    return [("widened", canonical_json(e["widened"]))] if e["widened"] else []


def event_bytes(fields) -> bytes:
    return EVENT_FORMAT + b"".join(field(v) for _, v in fields)


def genesis(org_id: str) -> bytes:
    return sha256(GENESIS_FORMAT + field(org_id))


def entry_hash(prev: bytes, org_id: str, seq: int, entry_id: str, recorded_at: str, event_digest: bytes) -> bytes:
    return sha256(
        ENTRY_FORMAT + prev + field(org_id) + field(str(seq)) + field(entry_id) + field(recorded_at) + event_digest
    )


# --------------------------------------------------------------------------------------------
# Format 2 (docs/integrity.md, "Format 2: a commitment per erasable value").

EVENT_FORMAT_V2 = b"stele-event-v2"
FIELDS_FORMAT_V2 = b"stele-fields-v2"


def fbytes(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def leaves(entry: dict):
    """(label, value bytes) of every erasable value: text as UTF-8, JSON values as canonical JSON."""
    out = []

    def text(label, value):
        if value is not None:
            out.append((label, value.encode("utf-8")))

    def json_leaf(label, value):
        out.append((label, canonical_json(value).encode("utf-8")))

    actor = entry["actor"]
    for key in ("id", "name", "email", "href"):
        text("actor." + key, actor.get(key))
    context = entry.get("context", {})
    for key in ("ip", "user_agent", "location", "reason"):
        text("context." + key, context.get(key))
    impersonator = context.get("impersonator")
    if impersonator is not None:
        for key in ("id", "email"):
            text("context.impersonator." + key, impersonator.get(key))
    text("description", entry.get("description"))
    entity = entry.get("entity")
    if entity is not None:
        for key in ("id", "name", "href"):
            text("entity." + key, entity.get(key))
    for i, value in enumerate(entry.get("entity_ids", [])):
        text(f"entity_ids.{i}", value)
    related = entry.get("related_entities", [])
    for i, one in enumerate(related):
        for key in ("id", "name", "href"):
            text(f"related_entities.{i}.{key}", one.get(key))
    for key, value in actor.get("metadata", {}).items():
        json_leaf("actor.metadata." + key, value)
    if entity is not None:
        for key, value in entity.get("metadata", {}).items():
            json_leaf("entity.metadata." + key, value)
    for i, one in enumerate(related):
        for key, value in one.get("metadata", {}).items():
            json_leaf(f"related_entities.{i}.metadata.{key}", value)
    for i, change in enumerate(entry.get("changes", [])):
        for part in ("old", "new"):
            if part in change:
                json_leaf(f"changes.{i}.{part}", change[part])
    for key, value in entry.get("metadata", {}).items():
        json_leaf("metadata." + key, value)
    for key, value in entry.get("origin", {}).items():
        json_leaf("origin." + key, value)
    return out


def read_seal(data: bytes):
    """The stored seal (a proof's personal_salt): ("v1", salt), ("v1-frozen", event digest),
    ("v2", salt) or ("v2-punctured", {label: ("salt" | "commitment", 32 bytes)})."""
    if len(data) == 16:
        return ("v1", data)
    need(len(data) > 0, "personal_salt is empty")
    tag, rest = data[0], data[1:]
    if tag == 1:
        need(len(rest) == 32, "a frozen seal holds one 32-byte digest")
        return ("v1-frozen", rest)
    if tag == 2:
        need(len(rest) == 16, "a format-2 seal holds a 16-byte salt")
        return ("v2", rest)
    need(tag == 3, f"personal_salt starts with an unknown tag {tag}")
    leaves_by_label = {}
    while rest:
        need(len(rest) >= 4, "a punctured seal is cut short")
        n = int.from_bytes(rest[:4], "big")
        need(len(rest) >= 4 + n + 33, "a punctured seal is cut short")
        label = rest[4:4 + n].decode("utf-8")
        kind = {0: "salt", 1: "commitment"}.get(rest[4 + n])
        need(kind is not None, "a punctured seal has an unknown leaf kind")
        leaves_by_label[label] = (kind, rest[5 + n:37 + n])
        rest = rest[37 + n:]
    return ("v2-punctured", leaves_by_label)


def fields_digest(entry: dict, seal, out) -> bytes:
    """The format-2 fields digest of the entry as shown, under its seal."""
    kind, value = seal
    commitments = {}
    shown = leaves(entry)
    for label, data in shown:
        is_json = label.split(".")[0] in ("changes", "metadata", "origin") or ".metadata." in label
        out.say(f"  leaf {label} = {data.decode('utf-8') if is_json else canonical_json(data.decode('utf-8'))}")
        if kind == "v2":
            leaf_salt = sha256(value + fbytes(label.encode("utf-8")))
        else:
            stored = value.get(label)
            need(stored is not None, f"{label} is shown but the entry's seal has no commitment for it")
            if stored[0] == "commitment":
                out.say(f"  NOT proven: {label} (erased or redacted; the value shown replaced the original)")
                continue
            leaf_salt = stored[1]
        commitments[label] = sha256(leaf_salt + fbytes(data))
    if kind == "v2-punctured":
        shown_labels = {label for label, _ in shown}
        for label, (leaf_kind, h) in value.items():
            if leaf_kind == "commitment":
                commitments[label] = h
            else:
                need(label in shown_labels, f"{label} was recorded but is no longer shown")
    h = hashlib.sha256(FIELDS_FORMAT_V2)
    for label in sorted(commitments, key=lambda l: l.encode("utf-8")):
        h.update(fbytes(label.encode("utf-8")))
        h.update(commitments[label])
    return h.digest()


def event_fields_v2(e: dict, fields_digest_hex: str):
    raw = e["raw"]
    context = raw.get("context", {})
    plain_context = {k: context[k] for k in ("api_key_id", "correlation_id", "request_id", "source")
                     if context.get(k) is not None}
    kind = e["entity"][0] if e["entity"] is not None else None
    return [
        ("occurred_at", e["occurred_at"]),
        ("action", e["action"]),
        ("detailed_action", e["detailed_action"]),
        ("channel", e["channel"]),
        ("outcome", e["outcome"]),
        ("actor.type", e["actor_type"]),
        ("actor.original_type", raw["actor"].get("original_type")),
        ("entity.type", kind),
        ("fields_digest", fields_digest_hex),
        ("context", canonical_json(plain_context)),
        ("change fields", canonical_json([c["field"] for c in raw.get("changes", [])])),
        ("related entity types", canonical_json([r["type"] for r in raw.get("related_entities", [])])),
    ]


# --------------------------------------------------------------------------------------------
# RFC 6962 / RFC 9162 Merkle tree.


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


EMPTY_ROOT = sha256(b"")


def verify_inclusion(leaf: bytes, index: int, size: int, path, root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path) -> bool:
    """RFC 9162 section 2.1.4.2, plus the sizes it leaves out (0 and equal sizes)."""
    if first > second:
        return False
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    if first & (first - 1) == 0:  # a perfect old tree: its root is the path's implicit first hash
        path = [first_root] + list(path)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# --------------------------------------------------------------------------------------------
# Ed25519 verification (RFC 8032 section 5.1.7), strict like ed25519-dalek's verify_strict:
# canonical S, R and A not of small order, R compared byte for byte with the recomputed one.

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1, 1, 0)


def _add(a, b):
    # Extended twisted Edwards coordinates, a = -1 (Hisil-Wong-Carter-Dawson 2008, complete).
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(k: int, point):
    result = IDENTITY
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _decode(data: bytes):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _encode(point) -> bytes:
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


BASE = _decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def _small_order(point) -> bool:
    return _encode(_mul(8, point)) == _encode(IDENTITY)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    a = _decode(public_key)
    r = _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L or _small_order(a) or _small_order(r):
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    minus_a = ((P - a[0]) % P, a[1], a[2], (P - a[3]) % P)
    return _encode(_add(_mul(s, BASE), _mul(h, minus_a))) == signature[:32]


# --------------------------------------------------------------------------------------------
# Checkpoints (docs/integrity.md, "Signed checkpoints").


def hex_bytes(value, size: int, where: str) -> bytes:
    need(isinstance(value, str) and re.fullmatch("[0-9a-fA-F]{%d}" % (2 * size), value) is not None,
         f"{where} must be {2 * size} hex digits")
    return bytes.fromhex(value)


def read_checkpoint(cp, where: str) -> dict:
    need(isinstance(cp, dict), f"{where} must be an object")
    only_keys(cp, {"org_id", "seq", "chain_head", "merkle_root", "created_at", "key_id", "signature"}, where)
    need(isinstance(cp.get("org_id"), str), f"{where}.org_id must be a string")
    need(isinstance(cp.get("key_id"), str), f"{where}.key_id must be a string")
    seq = int_value(cp.get("seq"), f"{where}.seq")
    need(seq >= 0, f"{where}.seq must not be negative")
    return {
        "org_id": cp["org_id"],
        "seq": seq,
        "chain_head": hex_bytes(cp.get("chain_head"), 32, f"{where}.chain_head"),
        "merkle_root": hex_bytes(cp.get("merkle_root"), 32, f"{where}.merkle_root"),
        "created_at": timestamp(cp.get("created_at"), f"{where}.created_at"),
        "key_id": cp["key_id"],
        "signature": hex_bytes(cp.get("signature"), 64, f"{where}.signature"),
    }


def signing_bytes(cp: dict) -> bytes:
    return (
        f"stele-checkpoint-v1\n{cp['org_id']}\n{cp['seq']}\n{cp['chain_head'].hex()}\n"
        f"{cp['merkle_root'].hex()}\n{cp['created_at']}\n"
    ).encode("utf-8")


def key_id(public_key: bytes) -> str:
    return sha256(public_key)[:8].hex()


class Report:
    def __init__(self, explain: bool):
        self.explain = explain
        self.signature_checked = True

    def say(self, text: str = ""):
        print(text)

    def detail(self, text: str = ""):
        if self.explain:
            print(text)


def check_checkpoint(cp: dict, name: str, public_key: bytes | None, out: Report):
    data = signing_bytes(cp)
    out.say(f"{name}: org {cp['org_id']}, seq {cp['seq']}, created {cp['created_at']}, key id {cp['key_id']}")
    out.say(f"  signing bytes ({len(data)} bytes, each line ends with \\n):")
    for line in data.decode("utf-8").split("\n")[:-1]:
        out.say(f"    {line}")
    out.detail(f"  signing bytes, hex: {data.hex()}")
    if public_key is None:
        out.signature_checked = False
        out.say("  signature: NOT CHECKED (no --public-key given)")
        return
    need(cp["key_id"].lower() == key_id(public_key),
         f"{name} is signed by key id {cp['key_id']}, but the given public key has key id {key_id(public_key)}")
    need(ed25519_verify(public_key, data, cp["signature"]), f"{name}: the Ed25519 signature does not match its signing bytes")
    out.say("  signature: valid Ed25519 signature by the given public key")


# --------------------------------------------------------------------------------------------
# The two proofs.


def event_digest_v1(e: dict, personal_digest: bytes, out: Report) -> bytes:
    fields = event_fields(e, personal_digest.hex())
    for name in ("entity_ids", "context", "changes", "metadata", "widened"):
        if name in dict(fields):
            out.say(f"  canonical {name}: {dict(fields)[name]}")
    data = event_bytes(fields)
    out.detail("  event bytes, field by field:")
    out.detail(f"    {EVENT_FORMAT.hex()}  \"stele-event-v1\"")
    for name, value in fields:
        encoded = field(value)
        shown = "absent" if value is None else repr(value)
        out.detail(f"    {encoded[:4].hex()} {encoded[4:].hex()}  {name} = {shown}")
    out.detail(f"  event bytes ({len(data)} bytes), hex: {data.hex()}")
    event_digest = sha256(data)
    out.say(f"  event digest    SHA-256(event bytes)  = {event_digest.hex()}")
    return event_digest


def check_personal_v1(e: dict, salt: bytes, personal_digest: bytes, out: Report):
    personal = e["personal"]
    # The personal digest: SHA-256(salt || canonical JSON of the five personal fields).
    fields = {
        "actor_email": personal["actor.email"],
        "actor_id": personal["actor.id"],
        "actor_name": personal["actor.name"],
        "ip": personal["context.ip"],
        "user_agent": personal["context.user_agent"],
    }
    recomputed = sha256(salt + canonical_json(fields).encode("utf-8"))
    need(recomputed == personal_digest,
         "the actor or context shown does not match the entry's personal digest")
    out.say(f"  personal digest SHA-256(salt canonical personal fields) = {recomputed.hex()}: "
            "the actor id, name, email, IP and user agent shown are the ones recorded")


def verify_inclusion_proof(doc: dict, public_key: bytes | None, out: Report):
    only_keys(doc, {"entry", "personal_digest", "personal_salt", "prev_hash", "entry_hash", "leaf_index", "tree_size",
                    "path", "checkpoint"}, "the proof")
    cp = read_checkpoint(doc.get("checkpoint"), "checkpoint")
    e = read_entry(doc.get("entry"))
    personal_digest = hex_bytes(doc.get("personal_digest"), 32, "personal_digest")
    prev = hex_bytes(doc.get("prev_hash"), 32, "prev_hash")
    claimed = hex_bytes(doc.get("entry_hash"), 32, "entry_hash")
    leaf_index = int_value(doc.get("leaf_index"), "leaf_index")
    tree_size = int_value(doc.get("tree_size"), "tree_size")
    path_list = doc.get("path")
    need(isinstance(path_list, list), "path must be a list")
    path = [hex_bytes(h, 32, f"path[{i}]") for i, h in enumerate(path_list)]

    out.say(f"entry {e['id']}: seq {e['seq']} of organization {cp['org_id']}")
    salt_hex = doc.get("personal_salt")
    need(salt_hex is None or isinstance(salt_hex, str), "personal_salt must be a string or null")
    seal = read_seal(hex_bytes(salt_hex, len(salt_hex) // 2, "personal_salt")) if salt_hex is not None else None
    if seal is not None and seal[0] == "v1-frozen":
        # A format-1 entry that an erasure or redaction rewrote: its event digest as written.
        event_digest = seal[1]
        out.say(f"  event digest    as recorded before the entry was rewritten = {event_digest.hex()}")
        out.say("  NOT proven: the content shown (an erasure or redaction rewrote this format-1 entry; "
                "its record in the trail says when and why)")
    elif seal is not None and seal[0] in ("v2", "v2-punctured"):
        digest = fields_digest(e["raw"], seal, out)
        need(digest == personal_digest,
             "the values shown (actor, context, description, entity, changes, metadata) do not match "
             "the entry's fields digest")
        out.say(f"  fields digest   SHA-256(\"stele-fields-v2\" F(label) commitment ...) = {digest.hex()}")
        fields = event_fields_v2(e, personal_digest.hex())
        for name in ("context", "change fields", "related entity types"):
            out.say(f"  canonical {name}: {dict(fields)[name]}")
        data = EVENT_FORMAT_V2 + b"".join(field(v) for _, v in fields)
        out.detail("  event bytes, field by field:")
        out.detail(f"    {EVENT_FORMAT_V2.hex()}  \"stele-event-v2\"")
        for name, value in fields:
            encoded = field(value)
            shown = "absent" if value is None else repr(value)
            out.detail(f"    {encoded[:4].hex()} {encoded[4:].hex()}  {name} = {shown}")
        event_digest = sha256(data)
        out.say(f"  event digest    SHA-256(event bytes)  = {event_digest.hex()}")
    else:
        event_digest = event_digest_v1(e, personal_digest, out)

    if e["seq"] == 1:
        g = genesis(cp["org_id"])
        out.say(f"  genesis         SHA-256(\"stele-chain-v1\" F(org_id)) = {g.hex()}")
        need(prev == g, "prev_hash of entry 1 must be the organization's genesis hash")
    out.say(f"  prev_hash       = {prev.hex()}")
    computed = entry_hash(prev, cp["org_id"], e["seq"], e["id"], e["recorded_at"], event_digest)
    out.say(f"  entry hash      recomputed = {computed.hex()}")
    need(computed == claimed, f"the entry does not hash to entry_hash {claimed.hex()}: its content or position differs")
    out.say("                  matches entry_hash")

    need(leaf_index == e["seq"] - 1, f"leaf_index {leaf_index} is not seq - 1 = {e['seq'] - 1}")
    need(tree_size == cp["seq"], f"tree_size {tree_size} is not the checkpoint's seq {cp['seq']}")
    leaf = leaf_hash(computed)
    out.say(f"  Merkle leaf     SHA-256(00 entry hash) = {leaf.hex()}")
    out.say(f"  audit path      {len(path)} hashes, leaf {leaf_index} of a tree of {tree_size}")
    need(verify_inclusion(leaf, leaf_index, tree_size, path, cp["merkle_root"]),
         "the audit path does not lead from the entry to the checkpoint's merkle_root")
    out.say(f"  Merkle root     {cp['merkle_root'].hex()} reached: the entry is in the checkpoint's tree")
    check_checkpoint(cp, "checkpoint", public_key, out)

    if seal is not None and seal[0] == "v1":
        check_personal_v1(e, seal[1], personal_digest, out)
    elif seal is None:
        covered = {k: v for k, v in e["personal"].items() if v is not None}
        if covered:
            shown = ", ".join(f"{k}={v!r}" for k, v in covered.items())
            out.say(f"  NOT proven: {shown}. The entry was erased (its salt destroyed), so its personal "
                    "fields are covered only by the salted personal_digest and cannot be checked.")
    return f"entry seq {e['seq']} is included in the checkpoint at seq {cp['seq']} of {cp['org_id']}"


def verify_consistency_proof(doc: dict, public_key: bytes | None, out: Report):
    only_keys(doc, {"from", "to", "path"}, "the proof")
    a = read_checkpoint(doc.get("from"), "from")
    b = read_checkpoint(doc.get("to"), "to")
    path_list = doc.get("path")
    need(isinstance(path_list, list), "path must be a list")
    path = [hex_bytes(h, 32, f"path[{i}]") for i, h in enumerate(path_list)]
    check_checkpoint(a, "from", public_key, out)
    check_checkpoint(b, "to", public_key, out)
    need(a["org_id"] == b["org_id"], "the two checkpoints belong to different organizations")
    need(a["seq"] <= b["seq"], "`from` must not be later than `to`")
    need(verify_consistency(a["seq"], b["seq"], a["merkle_root"], b["merkle_root"], path),
         "the later checkpoint's tree does not extend the earlier one")
    out.say(f"consistency: the tree of {b['seq']} entries extends the tree of {a['seq']} ({len(path)} path hashes)")
    return f"the checkpoint at seq {b['seq']} extends the one at seq {a['seq']} of {a['org_id']}"


# --------------------------------------------------------------------------------------------


def self_test() -> int:
    """Checks this file's building blocks against published test vectors."""
    # RFC 8032 section 7.1, tests 1 and 2 (public key, message, signature).
    vectors = [
        ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ]
    ok = True
    for pk, msg, sig in vectors:
        pk, msg, sig = bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig)
        ok &= ed25519_verify(pk, msg, sig)
        ok &= not ed25519_verify(pk, msg + b"x", sig)
        ok &= not ed25519_verify(pk, msg, sig[:63] + bytes([sig[63] ^ 1]))
    # Canonical JSON and numbers.
    doc = load_json('{"b":[1,{"z":null,"a":"\\u00e9\\n\\u0001"}],"a":true,"n":[1.0,1e2,-0,0.1,1e16,1.5e-7,0.00001,18446744073709551616]}')
    ok &= canonical_json(doc) == '{"a":true,"b":[1,{"a":"é\\n\\u0001","z":null}],"n":[1.0,100.0,-0.0,0.1,1e+16,1.5e-7,0.00001,1.8446744073709552e+19]}'
    # Merkle: a tree of 3 leaves.
    leaves = [leaf_hash(bytes([i])) for i in range(3)]
    root = node_hash(node_hash(leaves[0], leaves[1]), leaves[2])
    ok &= verify_inclusion(leaves[2], 2, 3, [node_hash(leaves[0], leaves[1])], root)
    ok &= verify_inclusion(leaves[0], 0, 3, [leaves[1], leaves[2]], root)
    ok &= not verify_inclusion(leaves[1], 0, 3, [leaves[1], leaves[2]], root)
    ok &= verify_consistency(2, 3, node_hash(leaves[0], leaves[1]), root, [leaves[2]])
    print("self-test: OK" if ok else "self-test: FAILED")
    return 0 if ok else 1


def main(argv) -> int:
    parser = argparse.ArgumentParser(description="Verify a Stele proof document without Stele.")
    parser.add_argument("proof", nargs="?", help="the proof document (JSON), or - for stdin")
    parser.add_argument("--public-key", help="the checkpoint public key, 64 hex digits, from a source you trust")
    parser.add_argument("--explain", action="store_true", help="also print the event bytes field by field")
    parser.add_argument("--self-test", action="store_true", help="check the building blocks against test vectors")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.proof:
        parser.print_usage(sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if args.proof == "-" else open(args.proof, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        print(f"cannot read {args.proof}: {e}", file=sys.stderr)
        return 2
    public_key = None
    if args.public_key is not None:
        if not re.fullmatch("[0-9a-fA-F]{64}", args.public_key) or _decode(bytes.fromhex(args.public_key)) is None:
            print("--public-key: not a 64-hex-digit Ed25519 public key", file=sys.stderr)
            return 2
        public_key = bytes.fromhex(args.public_key)

    out = Report(args.explain)
    try:
        try:
            doc = load_json(text)
        except json.JSONDecodeError as e:
            raise Invalid(f"the proof is not JSON: {e}") from None
        need(isinstance(doc, dict), "the proof must be a JSON object")
        if "entry" in doc:
            what = verify_inclusion_proof(doc, public_key, out)
        elif "from" in doc and "to" in doc:
            what = verify_consistency_proof(doc, public_key, out)
        else:
            raise Invalid("neither an inclusion proof (entry, ...) nor a consistency proof (from, to, path)")
    except Invalid as e:
        print(f"INVALID: {e}")
        return 1
    if out.signature_checked:
        print(f"OK: {what}; checkpoint signatures verified")
    else:
        print(f"OK: {what}. The checkpoint signature was NOT checked: pass --public-key HEX with a key "
              "you trust (this script then checks Ed25519 itself), or run "
              "`stele proof verify FILE --public-key HEX`.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:  # a bug here, not a verdict on the proof
        import traceback

        traceback.print_exc()
        print("ERROR: the verifier itself failed; this is not a verdict on the proof", file=sys.stderr)
        sys.exit(2)
