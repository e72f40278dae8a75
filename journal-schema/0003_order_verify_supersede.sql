-- The restore journal, version 3.
-- * Runs may be `superseded`: `restore --new-run` marks the unfinished runs of the same backup
--   and journal so, and nothing resumes them again.
-- * Events may be `superseded`: steps of a table whose plan was made again (a merge, after a
--   crash or a server restart, took parts the plan named into another part), replaced by the
--   steps of the new plan.
-- * New kinds: `detach-part` (a kept live part that comes after a part to attach in the backup's
--   order is detached, then attached again, so that block numbers follow the backup's order:
--   a local rename, nothing downloaded), `verify-table` (the table's active parts compared with
--   the backup's before the table is reported done) and `kill-mutation`.
-- SQLite cannot change a CHECK constraint in place: `runs` and `events` are rebuilt with the same
-- columns and rows.

CREATE TABLE runs_v3 (
    id            INTEGER PRIMARY KEY,
    backup        TEXT    NOT NULL,
    source        TEXT    NOT NULL CHECK (source IN ('local', 'remote')),
    -- The options of the run as JSON (never a password or a secret key).
    options       TEXT    NOT NULL,
    tool_version  TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'interrupted', 'done', 'partly_failed', 'failed', 'superseded')),
    started_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    finished_at   TEXT
);

INSERT INTO runs_v3 SELECT id, backup, source, options, tool_version, state, started_at, updated_at, finished_at FROM runs;

DROP TABLE runs;

ALTER TABLE runs_v3 RENAME TO runs;

CREATE TABLE events_v3 (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('plan-table', 'create-table', 'drop-part', 'download-part', 'attach-part',
                                                     'drop-table', 'detach-part', 'verify-table', 'kill-mutation')),
    database_name   TEXT    NOT NULL,
    table_name      TEXT    NOT NULL,
    -- Part events: the part (the live name for drops and detaches, the backup's name otherwise),
    -- its disk and size.
    part            TEXT,
    disk            TEXT,
    bytes           INTEGER NOT NULL DEFAULT 0,
    -- The content identity (hash_of_all_files, or crc64:<n> of checksums.txt).
    identity        TEXT,
    -- Unused since version 3 (resume finds an attached part by its recorded name, never by
    -- counting parts of an identity); kept for journals written before.
    expected_count  INTEGER,
    -- Order of execution within the table.
    sequence        INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'started', 'done', 'failed', 'interrupted', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- attach-part: the name ClickHouse gave the attached part, committed as soon as ATTACH
    -- returns (before the part is checked).
    new_part        TEXT,
    -- download-part: where the part was put (the table's detached/ folder).
    path            TEXT,
    -- create-table: the statement to run; plan-table: the table's plan as JSON; drop-table: the
    -- name the old table was kept under; attach-part of a detached live part: `local`;
    -- kill-mutation: the mutation's id.
    detail          TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

INSERT INTO events_v3 SELECT id, run_id, kind, database_name, table_name, part, disk, bytes, identity, expected_count,
                             sequence, state, attempts, last_error, new_part, path, detail, created_at, updated_at
FROM events;

DROP TABLE events;

ALTER TABLE events_v3 RENAME TO events;

CREATE INDEX events_by_run ON events (run_id);
CREATE INDEX events_by_table ON events (run_id, database_name, table_name, sequence);
