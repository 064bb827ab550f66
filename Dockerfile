# syntax=docker/dockerfile:1
# Countersign: one image for the API (`countersign serve`, the default) and the outbox worker
# (`countersign worker`).
#
#   docker build -t countersign .
#   docker run --init -p 8000:8000 -e DATABASE_URL=postgresql://user:pass@host:5432/db countersign
#
# Layout: the source is in /app and installed *editable* into the virtualenv /opt/venv. The code
# finds its Alembic migrations next to the package (app/core/migrate.py: parents[2]/"migrations",
# i.e. /app/migrations); a plain `pip install .` would copy app/ into site-packages and leave
# migrations/ behind, so `countersign serve` could not migrate. The editable install keeps app/
# and migrations/ siblings and still puts the `countersign` command on PATH.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: dependencies and the editable install into /opt/venv --------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall them.
# (All of them ship wheels for Python 3.11 on linux/amd64, so no compiler is needed; on a
# platform without wheels, install build-essential in this stage only.)
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# setuptools reads README.md for the package metadata.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip install --no-deps -e . \
    && python -m compileall -q app migrations

# ---- runtime: the virtualenv and the source, run as an unprivileged user -----------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    COUNTERSIGN_DATA_DIR=/data/pgdata

RUN groupadd --system --gid 10001 countersign \
    && useradd --system --uid 10001 --gid countersign --create-home \
        --home-dir /home/countersign --shell /usr/sbin/nologin countersign \
    && mkdir -p /data \
    && chown countersign:countersign /data

# Same paths as in the build stage: the editable install and the console script refer to them.
# The code stays owned by root, so the service cannot modify it.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

WORKDIR /app
USER countersign:countersign

# /data holds the embedded Postgres, used only without DATABASE_URL (mount a volume there:
# `-v countersign-data:/data`); docker-compose.yml always sets DATABASE_URL.
EXPOSE 8000

# Liveness only (/readyz also checks the database, which should not restart the container).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["countersign", "serve", "--host", "0.0.0.0", "--port", "8000"]
