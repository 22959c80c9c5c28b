"""The demo: an embedded PostgreSQL 18 holding a seeded 'online learning platform' production database."""
