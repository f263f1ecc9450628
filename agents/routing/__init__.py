"""Routing: which engine serves a request, in one package.

- `decision`: the pure decision (candidates with live figures in, engine and confidence out);
- `live`: reads those figures from the registry (heartbeats, queues, breakers);
- `batch`: decides for a whole batch with figures read once per capability;
- `rejections`: counts the requests routing refused, by kind.

The Celery task that routes (`agents.route`) is `tasks/routing_task.py`; the NATS bridge and
`agents loadtest --via direct` use `batch` in-process.
"""
