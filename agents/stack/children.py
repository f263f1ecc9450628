"""Celery processes of the local stack (workers, beat, Flower) under a tiny supervisor."""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404 # the local stack's own processes, argv lists, no shell
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from agents.settings import PROJECT_ROOT
from agents.stack.servers import popen_logged

MAX_RESTARTS = 5
# A worker refused its configuration (tasks/config_check.py): a restart would be refused again.
EXIT_CONFIG = os.EX_CONFIG
REFUSAL_MARK = "refused to start:"


@dataclass
class Child:
    """One supervised process; restarted (a few times) if it dies on its own."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _stopping: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int | None:
        """Process id while started."""
        return self.process.pid if self.process else None

    def start(self) -> None:
        """Start (or start again) with output appended to the log file."""
        self.process = popen_logged(self.argv, self.log_path, env=self.env, cwd=PROJECT_ROOT)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send a signal (SIGTERM asks Celery for a warm shutdown)."""
        self._stopping = True
        if self.alive():
            assert self.process is not None  # nosec B101 # narrows the type for mypy, not a check
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> None:
        """Wait for exit; kill the whole process group after `timeout` seconds."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart_if_dead(self, console: Console) -> None:
        """Restart a process that exited although nobody asked it to."""
        if self._stopping or self.process is None or self.alive():
            return
        if self.restarts >= MAX_RESTARTS:
            return
        if self.process.returncode == EXIT_CONFIG:
            self.restarts = MAX_RESTARTS
            console.print(
                f"[red]{self.name} refused its configuration; not restarted ({self.log_path}):[/red]"
            )
            console.print(refusal(self.log_path), markup=False, highlight=False, soft_wrap=True)
            return
        self.restarts += 1
        console.print(
            f"[yellow]{self.name} exited with {self.process.returncode}; restart "
            f"{self.restarts}/{MAX_RESTARTS} (see {self.log_path})[/yellow]"
        )
        time.sleep(min(2**self.restarts, 10))
        self.start()


def refusal(log_path: Path, most: int = 40) -> str:
    """The refusal a worker wrote last to its log (from its "refused to start:" line on)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if REFUSAL_MARK in line]
    return "\n".join(lines[starts[-1] :][:most]) if starts else "\n".join(lines[-most:])
