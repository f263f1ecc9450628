"""Task statuses, declared once: the history, the pipeline, the CLI and the metrics use these."""

from __future__ import annotations

# Stages a request passes through...
QUEUED, PROCESSING, RETRYING = "queued", "processing", "retrying"
# ...and the outcomes it ends in; a final status never goes back to a stage.
SUCCESS, FAILED, REJECTED, REVOKED = "success", "failed", "rejected", "revoked"
FINAL_STATUSES = frozenset({SUCCESS, FAILED, REJECTED, REVOKED})
ALL_STATUSES = frozenset({QUEUED, PROCESSING, RETRYING}) | FINAL_STATUSES
