"""Every module belongs to a layer of the import-linter contract (pyproject.toml), so a new module
cannot slip past `lint-imports` by being in none."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def layer_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [name.strip() for layer in layers["layers"] for name in layer.split(":")]


def project_modules() -> list[str]:
    modules = []
    for package in ("agents", "tasks", "db"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).with_suffix("")
            if "migrations" in relative.parts or relative.name == "__init__":
                continue  # Alembic's scripts are not imported; packages are their modules
            modules.append(".".join(relative.parts))
    return sorted(modules)


def test_every_module_is_in_a_layer() -> None:
    layers = layer_modules()
    unplaced = [
        m for m in project_modules() if not any(m == layer or m.startswith(layer + ".") for layer in layers)
    ]
    assert unplaced == []


def test_layers_name_only_existing_modules() -> None:
    modules = project_modules()
    missing = [
        layer
        for layer in layer_modules()
        if not any(m == layer or m.startswith(layer + ".") for m in modules)
    ]
    assert missing == []
