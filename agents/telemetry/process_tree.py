"""A worker's process tree measured for its heartbeat report: CPU percent and resident memory.

psutil's `cpu_percent` measures the time since the previous call on the same Process object, so
the objects are kept between samples: a child seen for the first time counts 0 % once. A child
that exited between two samples (pool recycling, a killed child) is dropped. Each sample reads a
few small /proc files per process (the main one and its direct children: the pool), about a
millisecond in all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class TreeSample:
    """CPU (100 = one core busy) and resident bytes of the tree, and how many processes it had."""

    cpu_percent: float
    memory_bytes: int
    processes: int


class ProcessTree:
    """Samples a process and its direct children; one instance per worker, sampled by one thread."""

    def __init__(self, pid: int | None = None) -> None:
        self.root = psutil.Process(pid or os.getpid())
        self.root.cpu_percent(None)  # the baseline of the first sample
        self._children: dict[psutil.Process, psutil.Process] = {}  # hashed by pid and start time

    def sample(self) -> TreeSample:
        """The tree now: CPU since the previous sample, resident memory now."""
        try:
            found = self.root.children()
        except psutil.Error:  # the root itself is gone (never for the worker sampling itself)
            found = []
        # Keep the Process objects already known (they hold the previous CPU times).
        self._children = {child: self._children.get(child, child) for child in found}
        cpu, memory, counted = 0.0, 0, 0
        for process in (self.root, *self._children.values()):
            try:
                with process.oneshot():  # one read of /proc/<pid>/stat for status and CPU
                    if process.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped
                        raise psutil.ZombieProcess(process.pid)
                    cpu += process.cpu_percent(None)
                    memory += process.memory_info().rss
                counted += 1
            except psutil.Error:  # exited since children() listed it (NoSuchProcess, zombie)
                self._children.pop(process, None)
        return TreeSample(cpu, memory, counted)
