"""`make chaos-ha`, shortened: one failover of each server of the HA topology (the Redis primary,
a NATS node, the PostgreSQL primary) under load, on real servers and workers, judged by the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers


@pytest.mark.timeout(600)
def test_each_failover_is_followed_and_the_ledger_balances(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.json"
    argv = [sys.executable, "-m", "bench.chaos", "--ha", "--kills-scale", "0.34", "--rate", "100"]
    argv += ["--dead-seconds", "10", "--json", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(done.stdout[-3000:])
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    verdicts = {v["scenario"]: v for v in json.loads(out.read_text())}
    assert set(verdicts) == {"redis-failover", "nats-node-kill", "postgres-failover"}
    for name, verdict in verdicts.items():
        assert verdict["faults"] == 1 and verdict["sent"] > 0, verdict
        # Every request accepted before, during and after the failover was answered once.
        assert verdict["succeeded"] + sum(verdict["failed"].values()) + verdict["lost"] == verdict["sent"]
        assert verdict["duplicated"] == 0 and verdict["leftovers"] == 0, verdict
        assert verdict["recovery_seconds"] is not None, name  # the probe after it was answered
    # A NATS node or a PostgreSQL primary may die without losing anything; the Redis failover's
    # loss is measured (asynchronous replication), and the whole platform must follow it.
    assert verdicts["nats-node-kill"]["lost"] == 0 and verdicts["postgres-failover"]["lost"] == 0
    assert verdicts["redis-failover"]["loss_measured"] is True
    assert done.returncode == 0, done.stdout[-3000:]
