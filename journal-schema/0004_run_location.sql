-- The restore journal, version 4: where each run read its backup. `location` is the local folder
-- (`<default disk>/backup/NAME/`) or `s3://<bucket>/<prefix>NAME/`, the prefix being the effective
-- s3.path: it may name the server's macros (`backup/{shard}`), and the journal records the path
-- they gave. NULL for runs journaled before version 4.

ALTER TABLE runs ADD COLUMN location TEXT;
