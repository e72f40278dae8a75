-- The restore journal, version 2: a `drop-table` event. A table recreated from the backup
-- (--drop-if-schema-changed, --full) keeps its old copy under another name until every part of
-- the new one is attached and verified; this event then drops the old copy. SQLite cannot
-- change a CHECK constraint in place, so `events` is rebuilt with the same columns and rows.

CREATE TABLE events_v2 (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('plan-table', 'create-table', 'drop-part', 'download-part', 'attach-part', 'drop-table')),
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
    -- create-table: the statement to run; plan-table: the table's plan as JSON; drop-table: the
    -- name the old table was kept under.
    detail          TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

INSERT INTO events_v2 SELECT id, run_id, kind, database_name, table_name, part, disk, bytes, identity, expected_count,
                             sequence, state, attempts, last_error, new_part, path, detail, created_at, updated_at
FROM events;

DROP TABLE events;

ALTER TABLE events_v2 RENAME TO events;

CREATE INDEX events_by_run ON events (run_id);
CREATE INDEX events_by_table ON events (run_id, database_name, table_name, sequence);
