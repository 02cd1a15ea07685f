"""The one way into the Lua scripts of ``queueing/lua/``.

Each script is read from disk once per process and called by its SHA (EVALSHA), so no
script body travels on the hot path; on NOSCRIPT (a restarted or failed-over Redis
forgets loaded scripts) it is sent once with EVAL, which also caches it on that server.
Every call uses the current client, so a changed REDIS_URL is followed. Nothing else in
the project calls EVAL.

Scripts share code through ``--!include <name>`` lines, replaced by
``queueing/lua/lib/<name>.lua`` when the script is read (Redis 6 has no function
libraries, and the embedded Redis is a 6.2): one copy of each helper in the repository,
one self-contained script on the server.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

from queueing.connection import get_redis

LUA_DIR = Path(__file__).resolve().parent / "lua"
_INCLUDE = re.compile(r"^--!include (?P<name>[a-z_]+)$", re.MULTILINE)


@dataclass(frozen=True)
class _Script:
    source: str
    sha: str


_scripts: dict[str, _Script] = {}
_lock = threading.Lock()


def _script(name: str) -> _Script:
    script = _scripts.get(name)
    if script is None:
        with _lock:
            script = _scripts.get(name)
            if script is None:
                source = script_source(name)
                script = _Script(source=source, sha=hashlib.sha1(source.encode()).hexdigest())  # noqa: S324 (Redis names scripts by SHA-1)
                _scripts[name] = script
    return script


def script_source(name: str) -> str:
    """The text of ``queueing/lua/<name>.lua`` with its ``--!include`` lines expanded."""
    source = (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
    return _INCLUDE.sub(
        lambda match: (LUA_DIR / "lib" / f"{match['name']}.lua").read_text(encoding="utf-8"), source
    )


def run_script(name: str, *, keys: list[str], args: list[str | int | float]) -> Any:
    """Runs ``queueing/lua/<name>.lua`` atomically with ``keys``/``args``; returns the
    raw (decoded) reply. Redis errors propagate: the queue never fails silently."""
    script = _script(name)
    client = get_redis()
    try:
        return client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        # A restarted or failed-over Redis forgot the script. EVAL runs it and leaves it
        # in that server's cache for the next EVALSHA. (redis-py's Script would reload
        # it with SCRIPT LOAD, which a Redis Cluster client sends to every master: it
        # fails while any master is down, even for an event whose master is fine.)
        return client.eval(script.source, len(keys), *keys, *args)
