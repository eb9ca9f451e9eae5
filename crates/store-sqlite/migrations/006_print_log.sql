
CREATE TABLE print_log (
    org_id               INTEGER NOT NULL REFERENCES orgs (key),
    id                   INTEGER NOT NULL,
    created_ms           INTEGER NOT NULL,
    status               TEXT NOT NULL CHECK (status IN
                             ('completed', 'failed', 'stopped', 'cancelled', 'skipped')),
    failure_reason       TEXT CHECK (failure_reason IN
                             ('adhesionFailure', 'spaghettiDetached', 'layerShift',
                              'cloggedNozzle', 'filamentRunout', 'warping', 'stringing',
                              'underExtrusion', 'powerFailure', 'userCancelled', 'other')),
    print_name           TEXT,
    printer_id           INTEGER,
    printer_name         TEXT,
    started_ms           INTEGER,
    completed_ms         INTEGER,
    duration_seconds     INTEGER,
    filament_type        TEXT,
    filament_color       TEXT,
    filament_used_grams  REAL,
    cost                 REAL,
    energy_kwh           REAL,
    energy_cost          REAL,
    created_by_username  TEXT,
    archive_id           INTEGER,
    thumbnail_path       TEXT,
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;
CREATE INDEX print_log_created ON print_log (org_id, created_ms);
CREATE INDEX print_log_status ON print_log (org_id, status, created_ms);
CREATE INDEX print_log_printer ON print_log (org_id, printer_id, created_ms);
CREATE INDEX print_log_user ON print_log (org_id, created_by_username, created_ms);

CREATE TABLE print_log_ids (
    org_id   INTEGER PRIMARY KEY REFERENCES orgs (key),
    last_id  INTEGER NOT NULL
);
