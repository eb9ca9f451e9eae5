
CREATE TABLE export_jobs (
    id            text PRIMARY KEY,
    org_id        bigint NOT NULL REFERENCES orgs (key),
    format        text NOT NULL,
    filters       text NOT NULL,
    runner        text NOT NULL,
    state         text NOT NULL CHECK (state IN ('pending', 'ready', 'error', 'expired')),
    created_ms    bigint NOT NULL,
    heartbeat_ms  bigint NOT NULL,
    finished_ms   bigint,
    entries       bigint,
    bytes         bigint,
    expires_ms    bigint,
    error         text
);
CREATE INDEX export_jobs_state ON export_jobs (state);

CREATE TABLE export_links (
    token_hash  bytea PRIMARY KEY,
    job_id      text NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    created_ms  bigint NOT NULL
);
CREATE INDEX export_links_job ON export_links (job_id);
