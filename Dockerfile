# syntax=docker/dockerfile:1
# PartnerMatch image: the `partnermatch` command, installed (not editable) in /opt/venv,
# with the Alembic migrations in the working directory. compose.yaml runs it; see docs/deployment.md.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README.md is part of the package metadata (pyproject's `readme`).
COPY pyproject.toml README.md ./
COPY src ./src
COPY ml ./ml

RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PARTNERMATCH_VAR_DIR=/var/lib/partnermatch \
    PARTNERMATCH_MIGRATIONS_DIR=/app/migrations
RUN groupadd --system --gid 10001 partnermatch \
    && useradd --system --uid 10001 --gid partnermatch --home-dir /app --no-create-home partnermatch \
    && mkdir -p /app /var/lib/partnermatch \
    && chown partnermatch:partnermatch /var/lib/partnermatch
# PARTNERMATCH_VAR_DIR: a named volume mounted there starts out owned by partnermatch (Docker copies
# the image directory's ownership into an empty volume).
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# settings.migrations_dir falls back to ./migrations for an installed package; the ENV above pins it.
COPY migrations ./migrations
USER partnermatch
EXPOSE 8000
CMD ["partnermatch", "serve", "--host", "0.0.0.0"]
