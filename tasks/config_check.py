"""A worker that consumes the maintenance queue runs the monitor and the optimizer: it refuses to
start when MONITORING_THRESHOLDS or OPTIMIZATION_RULES cannot be loaded, rather than failing
every monitor run later.

Checked on `worker_init`: after the worker knows its queues (`-Q`), before it connects, starts
its pool or sets up logging. Celery logs and swallows exceptions of signal receivers, so the
refusal is a SystemExit (EXIT_CONFIG) after the problems went to stderr, each naming the file,
line and field.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery.signals import worker_init

from agents.monitoring.files import configuration_problems
from agents.names import MAINTENANCE_QUEUE
from agents.settings import get_settings

EXIT_CONFIG = os.EX_CONFIG  # 78, sysexits' "configuration error": restarting will not help


@worker_init.connect
def _refuse_bad_configuration(sender: Any, **_: Any) -> None:
    if MAINTENANCE_QUEUE not in sender.app.amqp.queues.consume_from:
        return  # this worker never runs the monitor: other workers' files are not its business
    problems = configuration_problems(get_settings())
    if problems:
        print(f"worker {sender.hostname} refused to start:", *problems, sep="\n", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG)
