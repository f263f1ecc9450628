"""A process tree as the heartbeat measures it: a real parent with real children, one busy, one
that dies and is left a zombie."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from agents.telemetry.process_tree import ProcessTree

BUSY = "while True: pass"
IDLE = "import time; time.sleep(60)"
# Starts one child per argument, prints their pids, never reaps them (a killed one stays a zombie).
PARENT = (
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', code]) for code in sys.argv[1:]]\n"
    "print(' '.join(str(k.pid) for k in kids), flush=True)\n"
    "time.sleep(60)\n"
)


class Family:
    """A parent process (in its own process group) and its children's pids."""

    def __init__(self, *codes: str) -> None:
        self.parent = subprocess.Popen(
            [sys.executable, "-c", PARENT, *codes], stdout=subprocess.PIPE, start_new_session=True
        )
        assert self.parent.stdout is not None
        self.children = [int(pid) for pid in self.parent.stdout.readline().split()]

    def close(self) -> None:
        os.killpg(self.parent.pid, signal.SIGKILL)
        self.parent.wait()


@pytest.fixture()
def family() -> Iterator[list[Family]]:
    made: list[Family] = []
    yield made
    for one in made:
        one.close()


def test_cpu_and_memory_of_the_root_and_its_children(family: list[Family]) -> None:
    # Given a parent with a busy child and an idle one
    family.append(Family(BUSY, IDLE))
    tree = ProcessTree(family[0].parent.pid)
    busy = psutil.Process(family[0].children[0])
    assert tree.sample().processes == 3  # a child's first sample counts 0 %: no previous times
    before, started = sum(busy.cpu_times()[:2]), time.monotonic()
    time.sleep(1.0)
    # When sampled again
    second = tree.sample()
    used = (sum(busy.cpu_times()[:2]) - before) / (time.monotonic() - started) * 100
    # Then the busy child's CPU shows (as much of a core as the machine gave it), and memory is
    # the three processes' resident sets
    assert second.processes == 3
    assert used > 10 and second.cpu_percent == pytest.approx(used, abs=15)
    own = psutil.Process(family[0].parent.pid).memory_info().rss
    theirs = [psutil.Process(pid).memory_info().rss for pid in family[0].children]
    assert second.memory_bytes == pytest.approx(own + sum(theirs), rel=0.1)
    assert second.memory_bytes > own + min(theirs)


def test_a_child_that_died_is_dropped(family: list[Family]) -> None:
    family.append(Family(IDLE, IDLE))
    tree = ProcessTree(family[0].parent.pid)
    assert tree.sample().processes == 3
    os.kill(family[0].children[0], signal.SIGKILL)  # never reaped by its parent: a zombie
    deadline = time.monotonic() + 5
    while psutil.Process(family[0].children[0]).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert tree.sample().processes == 2
