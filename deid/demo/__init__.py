"""The demo: a seeded 'online learning platform' production database and the nightly job on it.

What the demo does is here (engine-neutral): the rows (rows.py), seeding (seed.py), the run (`__main__`) and
Airflow in the checkout (local_airflow.py). Each engine's part (its schema, how rows are loaded, a server to
run on) is in deid.backends.<engine>.demo, found by deid.demo.engines.
"""
