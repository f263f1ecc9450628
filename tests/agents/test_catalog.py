"""Loading engines from AGENT_ENGINES paths."""

from __future__ import annotations

import pytest

from agents.catalog import build_catalog, load_engine
from agents.errors import EngineConfigError
from agents.names import BUILTIN_ENGINES


def test_builtins_and_seed_style_engines_load() -> None:
    catalog = build_catalog(["tests.engines:engine", "tests.engines:FlakyEngine"])
    assert set(catalog) == {*BUILTIN_ENGINES, "my_engine", "flaky"}
    assert catalog["my_engine"].capabilities == ["processing", "analysis"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_xyz:engine", "cannot import 'no_such_module_xyz'"),
        ("tests.engines:nothing", "has no attribute 'nothing'"),
        ("tests.engines:config", "is a AgentConfig, not a BaseAgent"),
        ("tests.engines:MyEngine", "class MyEngine has no `config` attribute"),
    ],
)
def test_bad_paths_say_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(EngineConfigError, match=message):
        load_engine(path)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(EngineConfigError, match="two engines are named 'my_engine'"):
        build_catalog(["tests.engines:engine", "tests.engines:engine"])
