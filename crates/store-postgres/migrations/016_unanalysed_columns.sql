-- No statistics for the entries' columns that no query filters, sorts or joins on: the JSON
-- body and personal fields and the chain's hash, salt and digest. `ANALYZE` of a month's
-- partition (the upkeep runs it whenever a tenth of the month's rows are new) spent about half of
-- its time sampling these wide values for nothing (docs/benchmarks.md). `ALTER TABLE` on the
-- parent reaches every partition there is; partitions.rs sets the same on the months it makes.
ALTER TABLE entries
    ALTER COLUMN body SET STATISTICS 0,
    ALTER COLUMN personal SET STATISTICS 0,
    ALTER COLUMN salt SET STATISTICS 0,
    ALTER COLUMN personal_digest SET STATISTICS 0,
    ALTER COLUMN hash SET STATISTICS 0;
