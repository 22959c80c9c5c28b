"""PostgreSQL's snapshot strategies: `template` (the server copies the database's files itself, a reflink
on PostgreSQL 18 with file_copy_method = clone) and `dump` (pg_dump piped into pg_restore)."""
