"""A kombu consumer in its own process for the kill tests: it takes up to PREFETCH messages with
the reliable fetch, prints how many, and holds them unacked until it is killed."""

from __future__ import annotations

import sys
import time
from typing import Any

from kombu import Connection, Consumer, Exchange, Queue

from tasks.transport import Transport

URL, QUEUE_NAME, PREFETCH = sys.argv[1], sys.argv[2], int(sys.argv[3])
QUEUE = Queue(QUEUE_NAME, Exchange(QUEUE_NAME, type="direct"), routing_key=QUEUE_NAME)

held: list[Any] = []
with Connection(URL, transport=Transport, transport_options={"consumer_dead_seconds": 2}) as connection:
    consumer = Consumer(connection.channel(), [QUEUE], callbacks=[lambda body, m: held.append(m)])
    consumer.qos(prefetch_count=PREFETCH)
    consumer.consume()
    while len(held) < PREFETCH:
        connection.drain_events(timeout=10)
    print(len(held), flush=True)
    while True:  # holds them, heartbeat-less like a wedged or dead process, until SIGKILL
        time.sleep(1)
