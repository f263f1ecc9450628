"""The engines this process knows: the built-ins plus those named in AGENT_ENGINES."""

from __future__ import annotations

import importlib
from functools import lru_cache

from pydantic import ValidationError

from agents.base import BaseAgent
from agents.engines import builtin_engines
from agents.errors import EngineConfigError
from agents.settings import get_settings


def load_engine(path: str) -> BaseAgent:
    """Import `module:attribute`: an engine instance, or a BaseAgent subclass with a `config`."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineConfigError(
            f"AGENT_ENGINES entry {path!r}: cannot import {module_name!r}: {exc}"
        ) from exc
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise EngineConfigError(
            f"AGENT_ENGINES entry {path!r}: module {module_name!r} has no attribute {attribute!r}"
        ) from None
    if isinstance(target, BaseAgent):
        return target
    if isinstance(target, type) and issubclass(target, BaseAgent):
        if target.config is None:
            raise EngineConfigError(
                f"AGENT_ENGINES entry {path!r}: class {target.__name__} has no `config` attribute"
            )
        try:
            return target()
        except (TypeError, ValidationError) as exc:
            raise EngineConfigError(f"AGENT_ENGINES entry {path!r}: {exc}") from exc
    raise EngineConfigError(
        f"AGENT_ENGINES entry {path!r} is a {type(target).__name__}, not a BaseAgent instance or subclass"
    )


def build_catalog(paths: list[str]) -> dict[str, BaseAgent]:
    """Built-in engines and the engines at `paths`, by name; a duplicate name is an error."""
    catalog: dict[str, BaseAgent] = {}
    for engine in [*builtin_engines(), *(load_engine(path) for path in paths)]:
        if engine.name in catalog:
            raise EngineConfigError(f"two engines are named {engine.name!r}; engine names must be unique")
        catalog[engine.name] = engine
    return catalog


@lru_cache(maxsize=1)
def engines() -> dict[str, BaseAgent]:
    """This process's catalog, built once from the settings."""
    return build_catalog(get_settings().engine_paths)
