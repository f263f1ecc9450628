"""A local Prometheus for the live test: its config (the jobs of k8s/prometheus/prometheus.yml,
scraping the local stack's static targets every second) and its HTTP API."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.k8s.test_prometheus_rules import CONFIG, JOBS, RULES


def scrape_jobs() -> dict[str, str]:
    """Job name -> metrics_path of each job of k8s/prometheus/prometheus.yml."""
    jobs: dict[str, str] = {}
    for block in re.split(r"^\s*- job_name:", CONFIG.read_text(), flags=re.MULTILINE)[1:]:
        path = re.search(r"^\s*metrics_path:\s*(\S+)", block, re.MULTILINE)
        jobs[block.split()[0]] = path.group(1) if path else "/metrics"
    return jobs


def static_targets(urls: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """(host:port, pod label) of each job's targets in the local stack."""

    def address(url: str) -> str:
        return urllib.parse.urlsplit(url).netloc

    workers = sorted(
        (k.removeprefix("HEALTH_URL_").lower(), v) for k, v in urls.items() if k.startswith("HEALTH_URL_")
    )
    return {
        "agents-exporter": [(address(urls["EXPORTER_URL"]), "agents-exporter-local")],
        "agents-workers": [(address(url), f"{engine}-engine-local") for engine, url in workers],
        "agents-bridge": [(address(urls["BRIDGE_METRICS_URL"]), "nats-bridge-local")],
        "flower": [(address(urls["FLOWER_URL"]), "flower-local")],
    }


def write_config(folder: Path, urls: dict[str, str]) -> Path:
    """prometheus.yml (JSON is YAML) scraping the stack every second, with a copy of the rules."""
    jobs, targets = scrape_jobs(), static_targets(urls)
    assert set(jobs) == set(targets) == JOBS, f"k8s/prometheus/prometheus.yml has jobs {sorted(jobs)}"
    rules = folder / RULES.name
    rules.write_text(RULES.read_text())
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "static_configs": [
                    {"targets": [where], "labels": {"namespace": "agents", "pod": pod}}
                    for where, pod in targets[job]
                ],
            }
            for job, path in jobs.items()
        ],
    }
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


def api(base: str, path: str, **params: str) -> dict[str, Any]:
    """One Prometheus HTTP API call; its JSON body, errors (400, 422, 503) included."""
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"status": "error", "error": f"HTTP {exc.code}: {raw[:500]!r}"}
    return body


def series_count(base: str, selector: str, start: float) -> int:
    """How many series the selector matched between `start` and now (an error counts as none)."""
    answer = api(base, "/api/v1/series", **{"match[]": selector, "start": f"{start:.3f}"})
    return len(answer.get("data") or []) if answer.get("status") == "success" else 0


def ready(base: str) -> bool:
    """Prometheus answers /-/ready."""
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
