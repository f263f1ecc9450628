"""Every private part of Celery, kombu and billiard the platform relies on, one module per library.

Each use has a one-line reason and the version it was checked against; tests/tasks/internals
fails when an upgrade changes the shape of any of them, so an upgrade is a checklist: run the
test, read the failures, adapt the one module that names each part.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PrivatePart:
    """A private name the platform uses: where it is, what shape it must have, and why."""

    owner: object  # the class or module that defines it
    name: str
    # A callable's parameter names (checked exactly), "attribute" for a class attribute, or
    # "instance" for an attribute set in the owner's code on each instance.
    shape: tuple[str, ...] | str
    reason: str
