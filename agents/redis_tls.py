"""TLS to Redis: the one place that turns the settings into the TLS options of every Redis client
of the platform (redis-py clients, kombu's broker connection, Celery's result backend).

With a `rediss://` REDIS_URL the server's certificate is always verified (CERT_REQUIRED, against
REDIS_TLS_CA_FILE or the system's CAs) and so is its host name (redis-py's `ssl_check_hostname`
defaults to on and nothing here turns it off); there is no unverified mode.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from agents.settings import Settings

TLS_SCHEME = "rediss"
# REDIS_URL query keys with this prefix are TLS options; the REDIS_TLS_* settings carry them here.
_URL_TLS_PREFIX = "ssl_"
# The one TLS query option a URL may keep (Celery's docs ask for it): it says what we do anyway.
_VERIFIED = {"required", "CERT_REQUIRED"}
_FILES_NEED_TLS = "REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE need a rediss:// REDIS_URL"


def is_tls(url: str) -> bool:
    """REDIS_URL asks for TLS (`rediss://`)."""
    return urlsplit(url).scheme == TLS_SCHEME


def redis_tls_problem(
    url: str, ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> str | None:
    """Why REDIS_URL and the REDIS_TLS_* settings cannot give a verified TLS connection, or None."""
    if not is_tls(url):
        # A CA file with a plaintext URL would suggest a protection that is not there.
        return _FILES_NEED_TLS if (ca_file or cert_file or key_file) else None
    if key_file and not cert_file:
        return "REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE"
    for key, value in parse_qsl(urlsplit(url).query):
        if not key.startswith(_URL_TLS_PREFIX):
            continue
        if key == "ssl_cert_reqs" and value in _VERIFIED:
            continue
        if key == "ssl_cert_reqs":
            return (
                f"REDIS_URL asks ssl_cert_reqs={value}: the platform always verifies Redis's "
                "certificate; for a private CA set REDIS_TLS_CA_FILE"
            )
        return (
            f"REDIS_URL carries {key}: TLS options come from REDIS_TLS_CA_FILE, "
            "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE"
        )
    return None


def client_url(url: str) -> str:
    """REDIS_URL without its TLS query keys, for every client.

    Why: the options below must win, and a URL's would override them (kombu takes the URL's ssl
    dict over `broker_use_ssl`, redis-py its query over keyword arguments)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith(_URL_TLS_PREFIX)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def ssl_options(settings: Settings) -> dict[str, Any]:
    """TLS keyword options for redis-py, kombu's `broker_use_ssl` and Celery's
    `redis_backend_use_ssl` (the same keys for all three); empty for a `redis://` URL."""
    if not is_tls(settings.redis_url):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    files = {
        "ssl_ca_certs": settings.redis_tls_ca_file,
        "ssl_certfile": settings.redis_tls_cert_file,
        "ssl_keyfile": settings.redis_tls_key_file,
    }
    options.update({key: str(path) for key, path in files.items() if path is not None})
    return options
