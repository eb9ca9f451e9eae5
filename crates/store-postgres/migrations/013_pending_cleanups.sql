-- The months whose partitions still hold old row versions of entries an erasure or redaction
-- rewrote (`erasure.rs`): marked in the rewrite's own transaction, unmarked once `VACUUM (FULL)`
-- rewrote the month's partitions after every older transaction had ended. A clean-up that could
-- not finish (a long transaction, a restart) is finished by the next one or by the server's
-- upkeep. Bookkeeping, not part of the record.
CREATE TABLE pending_cleanups (
    month_start_ms  bigint PRIMARY KEY,
    -- The transaction that last marked the month: a clean-up unmarks only what it waited for,
    -- so a rewrite that commits while a clean-up runs is cleaned up again.
    marked_xid      xid8 NOT NULL
);
