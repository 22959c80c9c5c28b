"""`deid preview`: rows of one table before and after its scrub, for people allowed to see production.

access.py decides who may (deid.yaml's `preview:`), build.py computes the rows on a throw-away database,
render.py lays them out for the terminal. Values go to standard output only: never to a log, a record, a
file or an exception message.
"""
