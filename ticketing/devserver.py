"""``make run``: the embedded Redis (unless REDIS_URL is set), a Celery worker with beat
for the admission, mail and default queues, and Django's development server, started
together and stopped together by Ctrl-C (or SIGTERM).

    python -m ticketing.devserver --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ticketing import embedded_redis

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()

    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var"))
    embedded = not os.environ.get("REDIS_URL")
    if embedded:
        print(f"Embedded Redis: {embedded_redis.ensure_running(var_dir)}", flush=True)
    bin_dir = Path(sys.executable).parent
    children = [
        subprocess.Popen(
            [
                str(bin_dir / "celery"),
                "-A",
                "ticketing",
                "worker",
                "-B",
                "-Q",
                "admission,mail,default",
                "--concurrency",
                "2",
                "-l",
                "warning",
            ],
            cwd=ROOT,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"{args.host}:{args.port}"], cwd=ROOT
        ),
    ]
    print(
        f"\n  Ticket Rush is starting on http://{args.host}:{args.port}/  (admin: /admin/, API: /api/docs/)\n"
        "  Ctrl-C stops the web server, the Celery worker and beat, and the embedded Redis.\n",
        flush=True,
    )

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.3)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
    if embedded:
        embedded_redis.stop(var_dir)
        print("Stopped the web server, the Celery worker and the embedded Redis.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
