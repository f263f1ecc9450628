"""Tools that only Debian's packages carry (Prometheus's promtool, Chromium), for the tests.

Installed with apt-get when missing and the tests run as root (as on CI). Where they cannot be
installed the test skips and says why, except under CI=true, where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest

_lock = threading.Lock()
_apt_updated = False


def debian_tool(binary: str, package: str) -> str:
    """Path of `binary`, installing Debian's `package` first when it is missing."""
    global _apt_updated
    with _lock:
        found = shutil.which(binary)
        if found:
            return found
        why = _install(package) if os.geteuid() == 0 and shutil.which("apt-get") else "not root or no apt-get"
        found = shutil.which(binary)
        if found:
            return found
        message = f"{binary} (Debian package {package}) is missing and could not be installed: {why}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _install(package: str) -> str:
    global _apt_updated
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _apt_updated:
            update = ["apt-get", "update", "-qq"]
            subprocess.run(update, check=True, env=env, capture_output=True, timeout=300)
            _apt_updated = True
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            check=True, env=env, capture_output=True, timeout=600,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        return f"{exc}: {output.decode(errors='replace')[-500:]}"
    return "installed"
