
CREATE TABLE export_jobs (
    id            TEXT PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES orgs (key),
    format        TEXT NOT NULL,
    filters       TEXT NOT NULL,
    runner        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'error', 'expired')),
    created_ms    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    finished_ms   INTEGER,
    entries       INTEGER,
    bytes         INTEGER,
    expires_ms    INTEGER,
    error         TEXT
);
CREATE INDEX export_jobs_state ON export_jobs (state);

CREATE TABLE export_links (
    token_hash  BLOB PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX export_links_job ON export_links (job_id);
