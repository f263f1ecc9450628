"""A real nats-py subscriber in its own thread, for tests that check what the platform publishes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any


class NatsInbox:
    """JSON messages on `subject` (wildcards allowed), each with its `_subject`, in arrival order."""

    def __init__(self, url: str, subject: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run(url, subject)), daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "no NATS subscription"

    async def _run(self, url: str, subject: str) -> None:
        import nats

        client = await nats.connect(url)

        async def on_message(msg: Any) -> None:
            self.messages.append(json.loads(msg.data) | {"_subject": msg.subject})

        await client.subscribe(subject, cb=on_message)
        await client.flush()
        self.ready.set()
        while not self.stop.is_set():
            await asyncio.sleep(0.05)
        await client.close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The messages once at least `count` arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages
