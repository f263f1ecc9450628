"""NATS bridge: JetStream events become Celery engine tasks, at least once and never twice.

`mapping` and `events` are pure; `dispatch` (Redis, Celery) and `consumer` (NATS) do the I/O.
"""
