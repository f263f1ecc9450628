"""One execution pipeline: every step of a request's life, written once for every path.

A request is published (`after_publish`), passes the guards (tasks/pipeline/guards.py: poison,
duplicate publish), runs (`before_process`, then the engine's handler), and ends in an outcome
(`after_process`: success, failure, retry, rejection, revocation). Each cross-cutting step is one
Hook class (tasks/pipeline/hook.py) registered once (tasks/pipeline/registry.py): history,
breaker samples, rejection counts, results, retries, Flower events, NATS replies, callbacks.

Batch tasks (the router, high-throughput engines) call the hooks themselves, once per batch;
tasks that Celery's tracer runs reach the same hooks through its signals (signals.py).
"""
