# One image for every process of the todo app: web, worker, beat and migrate each
# run it with their own command (/app/bin/<process>, see docs/contract.md).
#
#   docker build -t todo .               the production image (target `runtime`, the last stage)
#   docker build --target dev -t todo .  the image Tilt runs locally (dev tools, writable /app)
#
# Layers are ordered so that editing code under app/ rebuilds only the code layers:
# the locked dependencies are installed from pyproject.toml + uv.lock alone.
#
# Policy checks (hadolint, checkov) pass; the one checkov skip, for the whole file:
# checkov:skip=CKV_DOCKER_2: one image runs web, worker, beat and migrate, so no single HEALTHCHECK fits; Kubernetes ignores HEALTHCHECK and probes each process itself (/healthz, /readyz, /app/bin/probe)

# uv is copied in as a single static binary; pinned so builds are reproducible.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---------------------------------------------------------------------------------
# Shared base: the interpreter, the environment every stage runs with, the app user.
FROM python:3.12-slim-bookworm AS python

# No .pyc writes at run time (the root filesystem is read-only in production; the
# build precompiles instead), logs reach stdout unbuffered, the venv comes first.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it and volume
# permissions are the same on every cluster. Its home is /tmp, the one writable path,
# for tools that keep runtime files under $HOME (gunicorn's control socket).
RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin app

WORKDIR /app

# ---------------------------------------------------------------------------------
# Builder: the locked runtime dependencies in /opt/venv, and nothing of the project.
FROM python AS builder

COPY --from=uv /uv /usr/local/bin/uv

# The venv lives outside /app so that the code can be synced over /app (Tilt) without
# touching it; it uses the base image's interpreter, never a downloaded one.
# Bytecode is compiled here because the running container cannot write it.
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.12 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# Only the two dependency files are mounted: a code change leaves this layer cached.
# The project itself is `package = false`, so there is nothing of it to install.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --locked --no-dev --no-install-project

# ---------------------------------------------------------------------------------
# Dev dependencies on top of the runtime ones: the `dev-image` group of pyproject.toml
# (watchfiles for --reload, debugpy for --debug, pytest, ruff, invoke in the container).
# Its other group, `host-tools`, stays out: tools whose inputs are not in the image
# (Playwright needs a browser; the Kubernetes, Tiltfile, Terraform and Dockerfile checkers
# check files outside app/).
FROM builder AS dev-venv

RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --locked --no-install-project --no-default-groups --group dev-image

# ---------------------------------------------------------------------------------
# dev: what Tilt builds for the kind cluster. Same paths as runtime, so live_update
# syncs app/ onto /app where the code runs; /app belongs to the app user so those
# syncs can write, and the local overlay runs the --reload commands.
FROM python AS dev

COPY --from=dev-venv /opt/venv /opt/venv
RUN chown 10001:10001 /app
COPY --chown=10001:10001 app/ /app/
# Bytecode of the code as built, so a restart after a live_update compiles only the files
# synced since (in memory: the processes write none).
RUN python -m compileall -q /app

ENV DJANGO_SETTINGS_MODULE=config.settings.local

USER 10001:10001
EXPOSE 8000
CMD ["/app/bin/web", "--reload"]

# ---------------------------------------------------------------------------------
# runtime (default): the venv and the code, owned by root and read-only to the app.
FROM python AS runtime

COPY --from=builder /opt/venv /opt/venv
COPY app/ /app/

ENV DJANGO_SETTINGS_MODULE=config.settings.production

# Static files are collected (hashed, compressed) into /app/staticfiles now, since the
# container cannot write them later; the code is precompiled for the same reason.
# Production settings demand these variables; collectstatic uses none of them.
RUN DJANGO_SECRET_KEY=collectstatic-needs-no-secret \
    DATABASE_URL=sqlite:////tmp/collectstatic-needs-no-database \
    REDIS_URL=redis://collectstatic-needs-no-broker:6379/0 \
    python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q /app

# PID 1: no init process (tini) is added, because none is needed. Each start script
# execs its server, so the server is PID 1 and receives SIGTERM itself, and each one
# handles it and reaps its own children: gunicorn's arbiter stops its workers
# gracefully, the Celery worker does a warm shutdown of its pool, beat exits cleanly,
# migrate runs no children. In the dev image, the reload launcher (the --reload of every
# start script, app/core/devreload.py) does the same for the process it forks. (`/app/bin/*` ending in `exec` is checked by tests/image.)

# Build arguments last: a new commit changes only this metadata, not the layers above.
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.title="todo" \
      org.opencontainers.image.description="Django + Celery todo app: web, worker, beat and migrate in one image" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

USER 10001:10001
EXPOSE 8000
CMD ["/app/bin/web"]
