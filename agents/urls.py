"""Server URLs fit for a terminal or a log: passwords never leave the settings."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def masked(url: str) -> str:
    """The URL with its password replaced by ***; in each part of a `;` list (Sentinels)."""
    if ";" in url:
        return ";".join(masked(part) for part in url.split(";"))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
