"""The nightly run's steps as plain functions of a RunContext: snapshot, scrub, rebase, migrate, validate,
publish (and rollback, cleanup). The CLI and the Airflow operators call these same functions."""
