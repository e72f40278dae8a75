-- The restore journal, version 1. Every state change of every event is committed here before and
-- after its side effect; a restore killed at any instant resumes from this file.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    backup        TEXT    NOT NULL,
    source        TEXT    NOT NULL CHECK (source IN ('local', 'remote')),
    -- The options of the run as JSON (never a password or a secret key).
    options       TEXT    NOT NULL,
    tool_version  TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'interrupted', 'done', 'partly_failed', 'failed')),
    started_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    finished_at   TEXT
);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('plan-table', 'create-table', 'drop-part', 'download-part', 'attach-part')),
    database_name   TEXT    NOT NULL,
    table_name      TEXT    NOT NULL,
    -- Part events: the part (the live name for drops, the backup's name otherwise), its disk and size.
    part            TEXT,
    disk            TEXT,
    bytes           INTEGER NOT NULL DEFAULT 0,
    -- The content identity (hash_of_all_files, or crc64:<n> of checksums.txt).
    identity        TEXT,
    -- attach-part: how many live parts of this identity the table holds once this event is done.
    expected_count  INTEGER,
    -- Order of execution within the table.
    sequence        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'started', 'done', 'failed', 'interrupted')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- attach-part: the name ClickHouse gave the attached part.
    new_part        TEXT,
    -- download-part: where the part was put (the table's detached/ folder).
    path            TEXT,
    -- create-table: the statement to run; plan-table: the table's plan as JSON.
    detail          TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- Not on state: an index holding it would be rewritten at every transition.
CREATE INDEX events_by_run ON events (run_id);
CREATE INDEX events_by_table ON events (run_id, database_name, table_name, sequence);

-- Append-only: one row per state change of an event.
CREATE TABLE transitions (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    at          TEXT    NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    detail      TEXT
);

CREATE INDEX transitions_by_event ON transitions (event_id, id);
