
CREATE TABLE print_log (
    org_id               bigint NOT NULL REFERENCES orgs (key),
    id                   bigint NOT NULL,
    created_ms           bigint NOT NULL,
    status               text COLLATE "C" NOT NULL CHECK (status IN
                             ('completed', 'failed', 'stopped', 'cancelled', 'skipped')),
    failure_reason       text COLLATE "C" CHECK (failure_reason IN
                             ('adhesionFailure', 'spaghettiDetached', 'layerShift',
                              'cloggedNozzle', 'filamentRunout', 'warping', 'stringing',
                              'underExtrusion', 'powerFailure', 'userCancelled', 'other')),
    print_name           text,
    printer_id           bigint,
    printer_name         text,
    started_ms           bigint,
    completed_ms         bigint,
    duration_seconds     bigint,
    filament_type        text COLLATE "C",
    filament_color       text,
    filament_used_grams  double precision,
    cost                 double precision,
    energy_kwh           double precision,
    energy_cost          double precision,
    created_by_username  text COLLATE "C",
    archive_id           bigint,
    thumbnail_path       text,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX print_log_created ON print_log (org_id, created_ms, id);
CREATE INDEX print_log_status ON print_log (org_id, status, created_ms, id);
CREATE INDEX print_log_printer ON print_log (org_id, printer_id, created_ms, id);
CREATE INDEX print_log_user ON print_log (org_id, created_by_username, created_ms, id);

CREATE TABLE print_log_ids (
    org_id   bigint PRIMARY KEY REFERENCES orgs (key),
    last_id  bigint NOT NULL
);
