"""The monitor end to end: a real queue backs up, the alert fires once to the table, the log, NATS and
a webhook, and resolves when the queue drains."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from agents.monitoring.monitor import Monitor
from agents.monitoring.thresholds import parse
from agents.stack.servers import free_port
from tests.nats_inbox import NatsInbox

pytestmark = pytest.mark.servers


class Webhook:
    """A local HTTP receiver: the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


THRESHOLDS = """\
thresholds:
  - name: CounterBacklog
    metric: queue_depth
    selector: counter
    comparison: ">"
    value: 5
    for: 0s
    cooldown: 0s
    severity: critical
    channels: [log, nats, "webhook:local"]
webhooks:
  local: {url}
"""


def test_a_backed_up_queue_fires_once_everywhere_then_resolves(
    fleet: str, nats_server: Any, redis_client: Any, webhook: Webhook
) -> None:
    from agents.settings import get_settings
    from db.alerts import list_alerts
    from tasks import app, engine_task

    monitor = Monitor(redis_client, parse(THRESHOLDS.format(url=webhook.url)))
    inbox = NatsInbox(get_settings().nats_url, "agents.alerts.>")
    monitor.run_once()  # first reading: nothing backed up
    app.control.cancel_consumer("counter", destination=[fleet], reply=True)
    try:
        results = [engine_task("counter").delay({"payload": {}}) for _ in range(10)]
        fired = monitor.run_once()
        assert [(t.kind, t.subject, t.value) for t in fired] == [("fired", "counter", 10.0)]
        assert monitor.run_once() == []  # still backed up: no second alert
        opened = [a for a in list_alerts(open_only=True) if a["name"] == "CounterBacklog"]
        assert len(opened) == 1 and opened[0]["engine"] == "counter" and opened[0]["severity"] == "critical"
        assert "queue_depth = 10" in opened[0]["message"]
    finally:
        app.control.add_consumer("counter", destination=[fleet], reply=True)
    for result in results:
        result.get(timeout=30)
    deadline = time.monotonic() + 20
    resolved: list[Any] = []
    while not resolved and time.monotonic() < deadline:
        resolved = monitor.run_once()
        time.sleep(0.2)
    assert [(t.kind, t.subject) for t in resolved] == [("resolved", "counter")]
    assert not [a for a in list_alerts(open_only=True) if a["name"] == "CounterBacklog"]
    # The other channels saw the same two transitions.
    assert [(m["state"], m["subject"]) for m in webhook.received] == [
        ("fired", "counter"),
        ("resolved", "counter"),
    ]
    deadline = time.monotonic() + 5
    while len(inbox.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    inbox.stop.set()
    assert [(m["_subject"], m["state"]) for m in inbox.messages] == [
        ("agents.alerts.critical", "fired"), ("agents.alerts.critical", "resolved"),
    ]  # fmt: skip


def test_the_beat_job_runs_the_monitor_on_a_worker(fleet: str, redis_client: Any) -> None:
    import celeryconfig
    from agents.names import MONITOR_STATE_KEY, MONITOR_TASK
    from tasks import app

    assert any(entry["task"] == MONITOR_TASK for entry in celeryconfig.beat_schedule.values())
    # The default thresholds all wait minutes before firing: a first run fires nothing ...
    assert app.send_task(MONITOR_TASK).get(timeout=30) == {"alerts": [], "actions": []}
    # ... and leaves its reading and alert state for the next run, whichever worker takes it.
    saved = json.loads(redis_client.get(MONITOR_STATE_KEY))
    assert abs(saved["reading"]["at"] - time.time()) < 60
    assert set(saved["state"]) == {"pending", "open", "last"} and saved["state"]["open"] == {}
