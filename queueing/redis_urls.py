"""Redis URLs: which ones mean Redis Cluster, what a ``redis+cluster://`` URL says, and
how to show a URL without its password.

``redis+cluster://[[user]:password@]host:port,host:port[,...][/0][?option=value]`` (or
``rediss+cluster://`` for TLS) lists a cluster's startup nodes; every other scheme
(``redis://``, ``rediss://``, ``unix://``) is a single Redis, left to redis-py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class ClusterSpec:
    """What a ``redis+cluster://`` URL says: startup nodes, credentials, TLS, options."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _to_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


# Query options a cluster URL may carry, with their parsers. Anything else is refused:
# a misspelt option silently ignored would be a setting that never applies.
CLUSTER_OPTIONS: dict[str, Callable[[str], Any]] = {
    "retries": int,
    "max_connections": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "require_full_coverage": _to_bool,
    "dynamic_startup_nodes": _to_bool,
    "client_name": str,
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_check_hostname": _to_bool,
}
SSL_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname")


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    ends = [index for index in (rest.find("/"), rest.find("?")) if index >= 0]
    cut = min(ends, default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hosts = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:***@{hosts}"
    # unix://...?password=... and the like.
    tail = re.sub(r"(?<=[?&])password=[^&]*", "password=***", tail)
    return f"{scheme}{sep}{authority}{tail}"


def _split_host_port(text: str, url: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ImproperlyConfigured(f"{redact(url)}: empty host in {text!r}")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ImproperlyConfigured(f"{redact(url)}: bad port in {text!r}") from None
    if not 0 < port < 65536:
        raise ImproperlyConfigured(f"{redact(url)}: port out of range in {text!r}")
    return host, port


def parse_cluster_url(url: str) -> ClusterSpec | None:
    """Parses ``redis+cluster://[[user]:password@]host:port,host:port[,...][/0][?opt=v]``
    (``rediss+cluster://`` for TLS) into a ``ClusterSpec``; returns None for any other
    scheme (a plain URL, for ``redis.Redis.from_url``).

    The user and password are percent-decoded (encode ``@ : / , ?`` in them); a host
    without a port means 6379; IPv6 hosts go in brackets. Raises ``ImproperlyConfigured``
    for a URL that cannot be right: no host, a bad port, a database other than 0 (a
    cluster has only database 0), an unknown or malformed option (``CLUSTER_OPTIONS``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        return None
    rest, _, query = rest.partition("?")
    # The user info ends at the last "@": a host list never contains one.
    userinfo, at, hosts_and_path = rest.rpartition("@")
    if not at:
        userinfo, hosts_and_path = "", rest
    hosts_text, _, path = hosts_and_path.partition("/")
    if path not in {"", "0"}:
        raise ImproperlyConfigured(f"{redact(url)}: a Redis Cluster has only database 0")
    username = password = None
    if userinfo:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    nodes = tuple(_split_host_port(item.strip(), url) for item in hosts_text.split(",") if item.strip())
    if not nodes:
        raise ImproperlyConfigured(f"{redact(url)}: no startup node (host:port) given")
    options: dict[str, Any] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in CLUSTER_OPTIONS:
            known = ", ".join(sorted(CLUSTER_OPTIONS))
            raise ImproperlyConfigured(f"{redact(url)}: unknown option {name!r} (known: {known})")
        try:
            options[name] = CLUSTER_OPTIONS[name](values[-1])
        except ValueError as exc:
            raise ImproperlyConfigured(f"{redact(url)}: option {name}: {exc}") from None
    return ClusterSpec(
        nodes=nodes,
        username=username,
        password=password,
        ssl=CLUSTER_SCHEMES[scheme.lower()],
        options=options,
    )


def is_cluster(url: str | None = None) -> bool:
    """True when ``url`` (default ``settings.REDIS_URL``) is a cluster URL."""
    scheme = (settings.REDIS_URL if url is None else url).partition("://")[0]
    return scheme.lower() in CLUSTER_SCHEMES
