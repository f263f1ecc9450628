"""Every private part of Celery, kombu and billiard the platform uses still has the shape it was
written against. After an upgrade, a failure here names the part and the module that uses it."""

from __future__ import annotations

import inspect

import pytest

from tasks.internals import PrivatePart, billiard, celery, kombu

PARTS = [(module.__name__, part) for module in (celery, kombu, billiard) for part in module.PARTS]


def describe(part: PrivatePart) -> str:
    return f"{getattr(part.owner, '__name__', part.owner)}.{part.name}"


@pytest.mark.parametrize(("module", "part"), PARTS, ids=[f"{m}:{describe(p)}" for m, p in PARTS])
def test_private_part_has_the_shape_the_platform_relies_on(module: str, part: PrivatePart) -> None:
    owner_name = getattr(part.owner, "__name__", repr(part.owner))
    if part.shape == "attribute":
        assert hasattr(part.owner, part.name), f"{owner_name} has no {part.name} ({module}: {part.reason})"
    elif part.shape == "instance":
        source = inspect.getsource(part.owner)  # type: ignore[arg-type]
        assert f"self.{part.name} =" in source, f"{owner_name} no longer sets self.{part.name} ({module})"
    else:
        params = tuple(inspect.signature(getattr(part.owner, part.name)).parameters)
        assert params == part.shape, f"{owner_name}.{part.name}{params} changed ({module}: {part.reason})"


def test_every_part_says_why() -> None:
    assert all(len(part.reason) > 20 for _, part in PARTS)
    assert all(m.CHECKED_WITH for m in (celery, kombu, billiard))
