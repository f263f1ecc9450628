"""`make audit`: pip-audit of requirements.txt, judged by the Makefile's AUDIT_VERDICT. A known
vulnerability fails it, any other error fails it, and only an unreachable vulnerability service
(no answer, or an answer for none of the pins) passes with a plain line saying so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAKEFILE = (ROOT / "Makefile").read_text()
VERDICT = MAKEFILE.split("define AUDIT_VERDICT\n", 1)[1].split("endef", 1)[0]
NOT_FOUND = "Dependency not found on PyPI and could not be audited: {} ({})"


def verdict(tmp_path: Path, report: dict | None, errors: str = "", code: int = 1) -> tuple[int, str]:
    path = tmp_path / "report.json"
    if report is not None:
        path.write_text(json.dumps(report))
    (tmp_path / "errors").write_text(errors)
    argv = [sys.executable, "-c", VERDICT, str(path), str(tmp_path / "errors"), str(code)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout + done.stderr


def test_the_target_audits_requirements_txt_with_the_pinned_pip_audit() -> None:
    dry = subprocess.run(["make", "-n", "audit"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert "pip-audit -r requirements.txt" in dry.stdout, dry.stdout + dry.stderr
    assert "audit" in MAKEFILE.split(".PHONY:", 1)[1].splitlines()[0].split()
    pins = (ROOT / "requirements-dev.txt").read_text()
    assert any(line.startswith("pip-audit==") for line in pins.splitlines())


def test_a_known_vulnerability_fails_and_is_named(tmp_path: Path) -> None:
    advisory = {"id": "GHSA-9wx4-h78v-vm56", "fix_versions": ["2.32.0"]}
    vulnerable = {"name": "requests", "version": "2.31.0", "vulns": [advisory]}
    report = {"dependencies": [vulnerable, {"name": "idna", "version": "3.7", "vulns": []}], "fixes": []}
    code, out = verdict(tmp_path, report)
    assert code == 1
    assert "requests==2.31.0: GHSA-9wx4-h78v-vm56, fixed in 2.32.0" in out
    assert "2 packages audited, 1 vulnerable" in out


def test_a_clean_audit_passes_and_names_what_it_could_not_audit(tmp_path: Path) -> None:
    skipped = {"name": "private", "skip_reason": NOT_FOUND.format("private", "1.0")}
    report = {"dependencies": [{"name": "idna", "version": "3.7", "vulns": []}, skipped], "fixes": []}
    code, out = verdict(tmp_path, report, code=0)
    assert code == 0
    assert "not audited: Dependency not found on PyPI" in out and "1 packages audited, 0 vulnerable" in out


@pytest.mark.parametrize(
    ("report", "errors"),
    [
        # What this machine's PyPI gives: its per-version JSON API answers 404 for every pin.
        ({"dependencies": [{"name": "celery", "skip_reason": NOT_FOUND.format("celery", "5.7.0")}]}, ""),
        # No network at all.
        (None, "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): "
               "Max retries exceeded (Caused by NameResolutionError(...))"),
    ],
)  # fmt: skip
def test_an_unreachable_service_is_said_plainly_and_passes(
    tmp_path: Path, report: dict | None, errors: str
) -> None:
    code, out = verdict(tmp_path, report, errors)
    assert code == 0
    assert out.startswith("pip-audit: vulnerability service unreachable: ")


def test_any_other_error_fails(tmp_path: Path) -> None:
    code, out = verdict(tmp_path, None, "pip-audit: error: could not resolve celery==99", code=2)
    assert code == 2 and "could not resolve" in out
