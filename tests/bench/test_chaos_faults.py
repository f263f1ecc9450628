"""`make chaos`'s breaker, time-limit, NATS and partition drills, shortened: one fault of each kind
under load, on servers and workers the drill starts itself, judged by its ledger of sent ids.

One drill run (one fleet) serves every test of this module; each test reads its scenario's row."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.servers

SCENARIOS = ("breaker", "time-limits", "nats-restart", "bridge-sigkill", "partition")
RUN_TIMEOUT_SECONDS = 420
Verdicts = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verdicts]:
    out = tmp_path_factory.mktemp("chaos") / "verdicts.json"
    argv = [sys.executable, "-m", "bench.chaos", "--kills-scale", "0.1", "--dead-seconds", "5"]
    argv += ["--rate", "100", "--phase-scale", "0.4", "--json", str(out)]
    argv += [arg for name in SCENARIOS for arg in ("--scenario", name)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    found = {v["scenario"]: v for v in json.loads(out.read_text())}
    assert set(found) == set(SCENARIOS), done.stdout[-3000:]
    yield found


def accounted(verdict: dict[str, Any]) -> None:
    """The ledger: every request final exactly once, none run twice outside a fault, none left."""
    if verdict["skipped"]:
        pytest.skip(verdict["skipped"])
    assert verdict["faults"] >= 1 and verdict["sent"] > 0, verdict
    assert verdict["lost"] == 0 and verdict["duplicated"] == 0 and verdict["leftovers"] == 0, verdict
    assert verdict["succeeded"] + sum(verdict["failed"].values()) == verdict["sent"], verdict
    assert verdict["problems"] == [], verdict
    assert verdict["recovery_seconds"] is not None, verdict
    assert verdict["ok"], verdict


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_a_failing_engine_opens_its_breaker_and_wins_traffic_back(verdicts: Verdicts) -> None:
    verdict = verdicts["breaker"]
    accounted(verdict)
    # Its failures are recorded with their reason (the breaker opened after a few of them).
    assert set(verdict["failed"]) <= {"failed: InjectedFailure"}, verdict
    assert verdict["failed"], verdict


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_requests_over_their_time_limits_fail_with_the_limit_named(verdicts: Verdicts) -> None:
    verdict = verdicts["time-limits"]
    accounted(verdict)
    # The soft limit fails the request it interrupts; the hard one its whole batch (known gap).
    assert verdict["failed"].get("failed: SoftTimeLimitExceeded", 0) >= 1, verdict
    assert verdict["failed"].get("failed: TimeLimitExceeded", 0) >= 1, verdict
    assert set(verdict["failed"]) <= {"failed: SoftTimeLimitExceeded", "failed: TimeLimitExceeded"}, verdict


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_every_event_runs_once_across_a_nats_restart(verdicts: Verdicts) -> None:
    accounted(verdicts["nats-restart"])
    assert verdicts["nats-restart"]["rerun"] == 0 and not verdicts["nats-restart"]["refused"]


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_every_event_runs_once_across_bridge_kills(verdicts: Verdicts) -> None:
    accounted(verdicts["bridge-sigkill"])
    assert verdicts["bridge-sigkill"]["rerun"] == 0 and not verdicts["bridge-sigkill"]["refused"]


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_a_worker_cut_off_from_redis_resumes_and_loses_nothing(verdicts: Verdicts) -> None:
    accounted(verdicts["partition"])
