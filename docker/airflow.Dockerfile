# The Airflow image of docker-compose.yml: the official image at the Airflow version pyproject.toml pins (the
# python3.11 variant, like CI), plus deid and the PostgreSQL 18 client. Built with the repository as context;
# docker/airflow.Dockerfile.dockerignore sends only what is copied below. dags/, plugins/, rules/ and
# migrations/ are not in the image: docker-compose.yml mounts them, so edits there need no rebuild (edits to
# deid/ do: `docker compose up -d --build`). tests/test_docker_compose.py checks the tag against the lock.
FROM apache/airflow:3.3.2-python3.11

USER root
# clone: dump runs pg_dump and pg_restore, which must be at least as new as the servers (PostgreSQL 18):
# the client comes from the PostgreSQL apt repository, set up by Debian's own postgresql-common script (any
# earlier definition of that repository is removed first, so that apt never sees it twice).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && rm -f /etc/apt/sources.list.d/pgdg* \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-18 \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# deid, with every dependency at the version of uv.lock (the versions the tests ran with) and Airflow at the
# image's own version, as Airflow's docs ask of images that extend theirs. uv only exports the lock; pip,
# the image's installer, installs. uv's version is the one ./dev uses.
COPY --chown=airflow:0 pyproject.toml uv.lock README.md /opt/deid-src/
COPY --chown=airflow:0 deid /opt/deid-src/deid
RUN pip install --no-cache-dir "uv==0.13.8" \
    && cd /opt/deid-src \
    && uv export --frozen --no-dev --no-emit-project --no-hashes --output-file /tmp/deid-lock.txt \
    && pip install --no-cache-dir --constraint /tmp/deid-lock.txt "apache-airflow==${AIRFLOW_VERSION}" . \
    && rm /tmp/deid-lock.txt

# Where docker-compose.yml mounts the run records' volume: made here, so the volume starts owned by airflow.
RUN mkdir -p /opt/airflow/deid_records
