"""The local stack's own secrets: kept in owner-only files under AGENTS_HOME, never printed."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

REDIS_PASSWORD_FILE = "redis.password"  # nosec B105 # a file name (test_redis_auth.py checks its mode)


def owner_only(path: Path, text: str) -> None:
    """Write `text` to a file nobody but its owner can read, from its first byte on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # an existing file keeps its old mode through O_CREAT
        file.write(text)


def redis_password(home: Path) -> str:
    """The Redis password of the stack in `home`: made once, then the same on every start, since
    Redis's data (and a client's stack.env) outlive a run."""
    path = home / REDIS_PASSWORD_FILE
    if path.exists() and (kept := path.read_text().strip()):
        return kept
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)  # URL-safe: it goes into REDIS_URL as is
    owner_only(path, password + "\n")
    return password


def redis_config(data_dir: Path, password: str | None, lines: tuple[str, ...] = ()) -> Path:
    """An owner-only redis.conf for redis-server's command line: `requirepass` there, where `ps`
    cannot show it (empty without a password), then `lines`, where `{password}` is the quoted
    password (e.g. `masterauth {password}`, `sentinel auth-pass agents {password}`)."""
    config = data_dir / "redis.conf"
    quoted = redis_quoted(password or "")
    text = f"requirepass {quoted}\n" if password else ""
    text += "".join(line.replace("{password}", quoted) + "\n" for line in lines)
    owner_only(config, text)
    return config


def redis_quoted(value: str) -> str:
    """A value in Redis's config syntax: a double-quoted string with backslash escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def url_password(url: str) -> str | None:
    """The password a URL carries, decoded, or None."""
    password = urlsplit(url).password
    return unquote(password) if password is not None else None
