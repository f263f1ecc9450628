"""The bridge's Prometheus metrics, declared once (served by `agents bridge --metrics-port`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_IN = Counter("agents_bridge_events", "Events fetched from JetStream.")
PUBLISHED = Counter("agents_bridge_published", "Engine tasks published to the broker.")
DUPLICATES = Counter("agents_bridge_duplicates", "Events acked without publishing: their task exists.")
REDELIVERED = Counter("agents_bridge_redelivered", "Events delivered more than once.")
NACKED = Counter("agents_bridge_nacked", "Events handed back for a delayed redelivery.", ["kind"])
DEAD_LETTERED = Counter("agents_bridge_dead_lettered", "Events that can never become a task.", ["kind"])
LAG = Gauge("agents_bridge_lag", "Events in the stream not yet delivered to the bridge (num_pending).")
PAUSED = Gauge("agents_bridge_paused", "1 while TRAFFIC_ROUTE=old_system stops consuming.")
