-- Events' own idempotency keys leave `idempotency` (which keeps the requests' keys) for a table
-- of their own, one small row a key: the key as sent, and the entry as its `pk` (the public id is
-- made from it) and `seq`. Rows are grouped by the UTC day they were recorded on, first in the
-- key, so that forgetting old keys removes whole days from the left of the B-tree and no index by
-- time is needed; a lookup reads today's and yesterday's group, which keeps every key at least
-- 24 hours. Keys of the earlier table whose entry is gone (pruned, its organization deleted) are
-- not carried over.
CREATE TABLE event_keys (
    day     INTEGER NOT NULL,
    org_id  INTEGER NOT NULL,
    key     TEXT NOT NULL,
    pk      INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (day, org_id, key)
) WITHOUT ROWID;

INSERT INTO event_keys (day, org_id, key, pk, seq)
SELECT i.created_ms / 86400000, i.org_id, substr(i.key, 3), e.pk, e.seq
FROM idempotency i
JOIN entries e ON e.org_id = i.org_id AND e.seq = json_extract(i.receipts, '$[0].seq')
WHERE i.key GLOB 'e:*';

DELETE FROM idempotency WHERE key GLOB 'e:*';
