"""Flower as an operator sees it: headless Chromium logs in with basic auth, finds every worker and
a task that just ran, and still finds the task after Flower restarts on its persistent db.

Flower runs with the argv `make run` gives it (`agents.stack.up.flower_argv`) and its credentials
in FLOWER_BASIC_AUTH, against the session's real servers and workers. Chromium is Debian's, driven
by Playwright (no browser download). Screenshots go to `test-artifacts/flower/` at the repo root
(git-ignored) so a person can look at them after `make test`.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.settings import Settings
from agents.stack.health import flower_request
from agents.stack.servers import free_port
from agents.stack.up import flower_argv
from tests.conftest import ROOT, spawn_worker, stop_worker
from tests.system_tools import debian_tool

pytestmark = pytest.mark.servers
ARTIFACTS = ROOT / "test-artifacts" / "flower"
USER = "operator"
PASSWORD = secrets.token_urlsafe(16)
# Known to work as root in a container: no sandbox, no GPU, nothing fetched in the background.
# Playwright's launch() gives the browser a fresh temporary user-data-dir of its own.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# The engine queues the session's fleet worker consumes (tests/conftest.py FLEET_QUEUES).
FLEET_ENGINES = ("intelligence", "performance", "optimization", "analysis", "flaky", "counter")
UI_TIMEOUT_MS = 20_000


class Flower:
    """One Flower process on a free loopback port, with basic auth and a persistent db."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings(flower_port=free_port(), agents_home=home)
        self.url = f"http://127.0.0.1:{self.settings.flower_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start as `make run` does and wait until it answers with the credentials."""
        argv = flower_argv(self.settings)
        self.process = spawn_worker(argv, "flower-browser", FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "flower exited; see flower-browser.log in the session home"
            try:
                self.api("/api/task/types")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        raise TimeoutError(f"flower did not answer on {self.url} within 30s")

    def stop(self) -> None:
        """SIGTERM, as `make run` stops it: Flower saves its state to the db on the way out."""
        if self.process is not None:
            stop_worker(self.process)
            self.process = None

    def api(self, path: str) -> Any:
        """GET a Flower JSON API path with the credentials."""
        request = flower_request(f"{self.url}{path}", f"{USER}:{PASSWORD}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def wait_for_task(self, task_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        """Block until Flower's own state has the task in `state` (events arrive asynchronously)."""
        deadline = time.monotonic() + timeout
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                info = self.api(f"/api/task/info/{task_id}")
            except urllib.error.HTTPError as exc:
                exc.close()  # 404 until the first event of the task arrives
            if info.get("state") == state:
                return info
            time.sleep(0.3)
        raise TimeoutError(f"flower never showed {task_id} as {state}: {info}")


@pytest.fixture()
def flower(fleet: str, batch_worker: None, tmp_path: Path) -> Iterator[Flower]:
    """Flower started after the session's workers, stopped (state saved) at the end."""
    server = Flower(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium (installed when missing and root; skips, or fails under CI, otherwise)."""
    return debian_tool("chromium", "chromium")


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/flower/ and print where it is."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def live_workers() -> set[str]:
    """Every worker node that answers a ping now (the fleet, batchy, and any other running)."""
    from tasks import app

    return {name for reply in app.control.ping(timeout=2.0) for name in reply}


@pytest.mark.timeout(240)
def test_flower_in_a_browser_shows_workers_and_a_task_that_just_ran(
    flower: Flower, chromium: str, fleet: str, redis_client: Any
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import HttpCredentials, expect, sync_playwright

    from tasks import route

    workers = live_workers()
    assert fleet in workers and any(w.startswith("batchy@") for w in workers), workers
    result = route.delay({"capability": "analysis", "payload": {"data": [1, 2, 3]}})
    assert result.get(timeout=30)["count"] == 3
    task_id = result.id
    flower.wait_for_task(task_id, "SUCCESS")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            # Without (or with wrong) credentials: every page and the API answer 401 and show nothing
            # of the cluster. Chromium gives up on the login (no credentials) or shows the 401 page.
            wrong: HttpCredentials = {"username": USER, "password": "wrong"}
            for credentials in (None, wrong):
                anonymous = browser.new_context(http_credentials=credentials)
                for path in ("/", "/workers", "/tasks", f"/task/{task_id}", "/api/workers"):
                    answer = anonymous.request.get(f"{flower.url}{path}")
                    assert answer.status == 401, (path, credentials)
                    assert fleet not in answer.text() and task_id not in answer.text()
                # The liveness probe stays open in Flower 2.x (so does /metrics, for Prometheus).
                assert anonymous.request.get(f"{flower.url}/healthcheck").status == 200
                page = anonymous.new_page()
                try:
                    response = page.goto(f"{flower.url}/workers")
                except PlaywrightError as exc:
                    assert credentials is None and "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
                else:
                    assert response is not None and response.status == 401
                    assert "Access denied" in page.content() and fleet not in page.content()
                    shot(page, "wrong-password")
                anonymous.close()

            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1440, "height": 900},
            )
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = context.new_page()

            # Workers page: every live worker node listed, online (the table refreshes every second).
            response = page.goto(f"{flower.url}/workers")
            assert response is not None and response.status == 200
            for name in sorted(workers):
                row = page.locator("#workers-table tbody tr", has_text=name)
                expect(row).to_have_count(1)
                expect(row).to_contain_text("Online")
            shot(page, "workers")

            # The fleet worker's page: its queues are the engines it serves.
            page.goto(f"{flower.url}/worker/{fleet}")
            expect(page.locator("#workername")).to_have_text(fleet)
            page.locator("#worker-tab-queues").click()
            expect(page.locator("#tab-queues")).to_have_css("opacity", "1")  # the tab has faded in
            queues = page.locator("#worker-queues")
            for engine in FLEET_ENGINES:
                expect(queues.locator("td", has_text=engine).first).to_be_visible()
            shot(page, "fleet-worker-queues")

            # Tasks page: the task that just ran, under the id the caller got, SUCCESS.
            page.goto(f"{flower.url}/tasks")
            row = page.locator(f"#tasks-table tbody tr[id='{task_id}']")
            expect(row).to_contain_text(task_id)
            expect(row).to_contain_text("SUCCESS")
            expect(row).to_contain_text("agents.engine.analysis")  # routed: the engine's task, same id
            expect(row).to_contain_text(fleet)
            shot(page, "tasks")

            # Persistent state: after a restart on the same db, Flower still shows the task.
            flower.stop()
            flower.start()
            page.goto(f"{flower.url}/tasks")
            row = page.locator(f"#tasks-table tbody tr[id='{task_id}']")
            expect(row).to_contain_text("SUCCESS")
            shot(page, "tasks-after-restart")
            context.close()
        finally:
            browser.close()
    assert list(flower.settings.agents_home.glob("flower.db*"))
