-- The search index moves out of this file into a file of its own beside it (`search.rs`), built
-- on a thread of its own behind the commit; what it has not taken in yet is listed here.
DROP TABLE entry_terms;
DROP TABLE entries_fts;

-- Every change the search index must follow, in commit order: an entry written (op 1), an
-- entry rewritten by an erasure or redaction (op 2), an entry removed by retention or an
-- organization's deletion (op 3). The index file records the last `id` it has taken in; readers
-- check the entries of later rows directly. Rows the index has taken in are deleted by the
-- writer, all but the newest, so `id` keeps growing.
CREATE TABLE search_queue (
    id      INTEGER PRIMARY KEY,
    org_id  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    pk      INTEGER NOT NULL,
    op      INTEGER NOT NULL
);

-- Names this database to its search index file: an index file made for another database (or a
-- copy of this one restored beside it) is rebuilt.
INSERT INTO meta (key, value) VALUES ('search_index_id', lower(hex(randomblob(16))));
