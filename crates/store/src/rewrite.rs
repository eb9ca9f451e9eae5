//! What both backends share about erasure and redaction: which stored rows an erasure needs to
//! look at, and what a rewritten row becomes.

use stele_core::erase::Person;
use stele_core::merkle::Hash;
use stele_core::seal::{self, Seal};
use stele_core::{NewEvent, Seq};

use crate::StoreError;

/// One entry as an erasure or redaction leaves it: its new content, seal and stored text, and
/// its old content (whose index rows must go).
#[derive(Debug)]
pub struct Rewritten {
    pub pk: i64,
    pub seq: Seq,
    pub before: NewEvent,
    pub after: NewEvent,
    pub seal: Seal,
    /// The `body` and `personal` columns' new text.
    pub body: String,
    pub personal: String,
}

impl Rewritten {
    /// `before` with its seal as stored becomes `after`, resealed.
    pub fn new(
        pk: i64,
        seq: Seq,
        before: NewEvent,
        personal_digest: &Hash,
        seal: &Seal,
        after: NewEvent,
    ) -> Result<Rewritten, StoreError> {
        let seal = seal::reseal(&before, personal_digest, seal, &after)
            .map_err(|e| StoreError::Other(format!("seq {seq}: {e}")))?;
        let (body, personal) = crate::record::stored_text(&after);
        Ok(Rewritten {
            pk,
            seq,
            before,
            after,
            seal,
            body,
            personal,
        })
    }
}

/// Lowercase text fragments, at least one of which every stored column of an entry that
/// mentions the person holds (the JSON columns hold them escaped as JSON escapes them): a
/// backend reads only the rows whose `body`, `personal` or `description` contains one (ignoring
/// ASCII case), and decodes and checks those.
pub fn needles(person: &Person) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let ids = [&person.id, &person.email, &person.name]
        .into_iter()
        .flatten()
        .chain(&person.other);
    for id in ids {
        let quoted = serde_json::to_string(id).expect("a string serializes");
        for form in [id.as_str(), &quoted[1..quoted.len() - 1]] {
            let lower = form.to_ascii_lowercase();
            if !lower.is_empty() && !out.contains(&lower) {
                out.push(lower);
            }
        }
    }
    out
}
