"""The README's settings table lists every setting, so the docs cannot drift from the code."""

from __future__ import annotations

from agents.settings import Settings
from tests.conftest import ROOT


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    missing = [
        name.upper() for name in Settings.model_fields if not any(f"`{name.upper()}`" in r for r in rows)
    ]
    assert missing == []
