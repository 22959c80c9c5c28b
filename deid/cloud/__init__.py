"""Clones made by the cloud provider's storage, outside any database server: an Aurora cluster clone
(copy-on-write), an RDS instance restored from a snapshot, and the DNS name staging users connect to.

Plain functions over an injected boto3 client (tests point it at moto's server), so the snapshot and publish
steps can call them with whatever client the deployment configures. Nothing here speaks SQL or names a
database engine: the engine of a clone is the source's, read from AWS. The steps run against a clone through
the URL `endpoints.clone_url` builds from the clone's endpoint.

- aurora: clone a cluster, count its clones against Aurora's limit, delete deid's old clones
- rds: restore an instance from a snapshot, delete deid's old restores
- dns: point a Route 53 name at a clone, read back what it points at (rollback points it back)
- naming, waiting, awserrors, results: identifiers and tags, bounded waiters, AWS errors as deid errors,
  what each call took
"""
