//! The state file: how far one source has been imported into one target, written after every
//! batch the server acknowledged (to a temporary file, synced, then renamed over the old one, so
//! a crash leaves the old state or the new one, never half of either).
//!
//! A run starts after the rows it records. Between a batch's acknowledgement and the state's
//! write a crash can lose the record of that batch; the next run then sends it again, and the
//! events' idempotency keys make the server store nothing twice.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{Resume, Row};

const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    version: u32,
    /// `stele-export`, `workos-csv`, `activitylog`.
    kind: String,
    /// The file's absolute path, or the table's database and name.
    source: String,
    /// The server and, with a platform key, the organization.
    target: String,
    /// The idempotency key of the source's first row: a file at the same path with other
    /// contents is another source.
    first_key: Option<String>,
    /// Rows of the source imported (sent, or skipped as invalid), in order.
    pub rows_done: u64,
    /// For a table: the id of the last row imported.
    cursor: Option<String>,
    /// Events sent, and rows skipped, over all runs.
    sent: u64,
    skipped: u64,
    /// When this was written (RFC 3339).
    updated_at: String,
    /// The events sent before the current run (so `sent` can be the total).
    #[serde(skip)]
    sent_before: u64,
    #[serde(skip)]
    skipped_before: u64,
}

/// The default state file of an input file: beside it, `<name>.import-state.json`.
pub fn beside(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".import-state.json");
    file.with_file_name(name)
}

impl State {
    /// The state at `path`, or a new one if there is no such file. A state of another source
    /// or target is refused: continuing it would skip rows this import never sent.
    pub fn load(path: &Path, kind: &str, source: &str, target: &str) -> anyhow::Result<State> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: VERSION,
                    kind: kind.into(),
                    source: source.into(),
                    target: target.into(),
                    first_key: None,
                    rows_done: 0,
                    cursor: None,
                    sent: 0,
                    skipped: 0,
                    updated_at: String::new(),
                    sent_before: 0,
                    skipped_before: 0,
                });
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the state file {}", path.display()));
            }
        };
        let mut state: State = serde_json::from_str(&text).with_context(|| {
            format!(
                "the state file {} is not one `stele import` wrote; remove it or pass another --state",
                path.display()
            )
        })?;
        anyhow::ensure!(
            state.version == VERSION,
            "the state file {} has version {}, which this stele does not read",
            path.display(),
            state.version
        );
        if state.kind != kind || state.source != source || state.target != target {
            anyhow::bail!(
                "the state file {} is of the import of {} {} into {}, not of {kind} {source} into \
                 {target}; pass --state with another file for this import",
                path.display(),
                state.kind,
                state.source,
                state.target
            );
        }
        state.sent_before = state.sent;
        state.skipped_before = state.skipped;
        Ok(state)
    }

    pub fn resume(&self) -> Resume {
        Resume {
            rows_done: self.rows_done,
            cursor: self.cursor.clone(),
            first_key: self.first_key.clone(),
        }
    }

    /// Records the source's first row, or checks it against the one recorded: the same path
    /// holding another file is another source.
    pub fn check_first_row(&mut self, row: &Row, path: &Path) -> anyhow::Result<()> {
        if row.ordinal != 1 {
            return Ok(());
        }
        match &self.first_key {
            // Nothing imported yet (the first row may have stopped the last run and been fixed
            // since): this row is the first.
            _ if self.rows_done == 0 => {
                self.first_key = Some(row.key.clone()).filter(|k| !k.is_empty());
            }
            None => self.first_key = Some(row.key.clone()).filter(|k| !k.is_empty()),
            Some(k) if *k == row.key => {}
            Some(_) => anyhow::bail!(
                "the state file {} was written for another content of {} (its first row differs); \
                 remove the state file to import this one from the start",
                path.display(),
                self.source
            ),
        }
        Ok(())
    }

    /// Every row up to and including `ordinal` is imported; `cursor` is that row's (tables).
    pub fn done_through(&mut self, ordinal: u64, cursor: Option<String>, skipped_in_run: u64) {
        self.rows_done = self.rows_done.max(ordinal);
        if cursor.is_some() {
            self.cursor = cursor;
        }
        self.skipped = self.skipped_before + skipped_in_run;
    }

    /// `sent_in_run` events were sent in the current run.
    pub fn done_sent(&mut self, sent_in_run: u64) {
        self.sent = self.sent_before + sent_in_run;
    }

    /// Writes the state to `path` atomically.
    pub fn save(&mut self, path: &Path) -> anyhow::Result<()> {
        self.updated_at = stele_core::time::format_rfc3339(stele_core::time::now_millis());
        let text = serde_json::to_string_pretty(self).expect("the state serializes");
        let mut tmp = path.as_os_str().to_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().with_context(|| format!("writing the state file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_saved_and_read_back_and_refuses_another_import() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = State::load(&path, "workos-csv", "/x.csv", "http://h").unwrap();
        assert_eq!(s.rows_done, 0);
        s.done_through(10, None, 1);
        s.done_sent(9);
        s.save(&path).unwrap();
        let again = State::load(&path, "workos-csv", "/x.csv", "http://h").unwrap();
        assert_eq!((again.rows_done, again.sent, again.skipped), (10, 9, 1));
        let other = State::load(&path, "workos-csv", "/x.csv", "http://other").unwrap_err();
        assert!(other.to_string().contains("--state"), "{other}");
        std::fs::write(&path, "not json").unwrap();
        let bad = State::load(&path, "workos-csv", "/x.csv", "http://h").unwrap_err();
        assert!(
            bad.to_string().contains("not one `stele import` wrote"),
            "{bad}"
        );
    }

    #[test]
    fn the_first_row_is_checked_once_rows_are_imported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut s = State::load(&path, "stele-export", "/x", "http://h").unwrap();
        let row = |key: &str| Row {
            ordinal: 1,
            at: "line 1".into(),
            cursor: None,
            key: key.into(),
            event: Err(super::super::Problem::new("line", "is not a JSON entry")),
        };
        // A first row that stopped the import (no key), then fixed.
        s.check_first_row(&row(""), &path).unwrap();
        s.check_first_row(&row("import:a"), &path).unwrap();
        s.done_through(1, None, 0);
        s.check_first_row(&row("import:a"), &path).unwrap();
        let e = s.check_first_row(&row("import:b"), &path).unwrap_err();
        assert!(e.to_string().contains("first row differs"), "{e}");
    }

    #[test]
    fn the_default_state_file_is_beside_the_input() {
        assert_eq!(
            beside(Path::new("/data/audit.ndjson")),
            Path::new("/data/audit.ndjson.import-state.json")
        );
    }
}
