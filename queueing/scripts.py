"""The one way into the Lua scripts of ``queueing/lua/``.

Each script is read from disk and registered once per process; redis-py's ``Script``
calls EVALSHA and falls back to SCRIPT LOAD on NOSCRIPT (a restarted or failed-over
Redis forgets loaded scripts), so no script body travels on the hot path. Nothing else
in the project calls EVAL.

Scripts share code through ``--!include <name>`` lines, replaced by
``queueing/lua/lib/<name>.lua`` when the script is read (Redis 6 has no function
libraries, and the embedded Redis is a 6.2): one copy of each helper in the repository,
one self-contained script on the server.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from redis.commands.core import Script

from queueing.connection import get_redis

LUA_DIR = Path(__file__).resolve().parent / "lua"
_INCLUDE = re.compile(r"^--!include (?P<name>[a-z_]+)$", re.MULTILINE)

_scripts: dict[str, Script] = {}
_lock = threading.Lock()


def _script(name: str) -> Script:
    script = _scripts.get(name)
    if script is None:
        with _lock:
            script = _scripts.get(name)
            if script is None:
                source = script_source(name)
                # The client given here only computes the SHA; every call passes the
                # current client, so a changed REDIS_URL is followed.
                script = Script(get_redis(), source)
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
    return _script(name)(keys=keys, args=args, client=get_redis())
