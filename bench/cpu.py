"""Where the machine's CPU went during a run: ``CpuMeter`` (per process tree, from Linux
/proc) and a summary of a py-spy recording of one web worker.

The machine is shared (other agents, other runs): a CPU split that names "other
processes" and "idle" tells at once whether a figure is the system's or the neighbours'.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROJECT_PACKAGES = ("ticketing/", "events/", "queueing/", "booking/", "accounts/")


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack.extend(child_pids(current))
    return pids


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process so far (Linux /proc), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(fields[9])
    return inodes


def pid_listening(port: int) -> int | None:
    """The process listening on TCP ``port`` on this machine (a server we did not start,
    e.g. the shared MariaDB or RabbitMQ, so its CPU can be named in the split), or None
    when nothing listens or the process is not ours to look at."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(proc.name)
        except OSError:
            continue
    return None


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class CpuMeter:
    """Core-seconds per group of process trees (sampled: call ``sample()`` every second
    or so, so that a process that exits keeps its last reading), everything else on the
    machine, and idle time. A group named ``driver`` or ``load generator`` counts only its
    own process, not its children (the driver is the parent of everything else)."""

    OWN_PROCESS_ONLY = frozenset({"driver", "load generator"})

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = {group: list(pids) for group, pids in roots.items()}
        self.baseline: dict[int, float] = {}
        self.latest: dict[tuple[str, int], float] = {}
        self.started = machine_jiffies()
        self.sample(baseline=True)

    def add(self, group: str, pid: int) -> None:
        self.roots.setdefault(group, []).append(pid)
        self.sample()

    def sample(self, *, baseline: bool = False) -> None:
        for group, roots in self.roots.items():
            for root in roots:
                for pid in [root] if group in self.OWN_PROCESS_ONLY else process_tree(root):
                    seconds = cpu_seconds(pid)
                    if seconds is None:
                        continue
                    # Only what ran before the meter started is subtracted: a process
                    # started later (a respawned worker, locust) counts in full.
                    if baseline:
                        self.baseline[pid] = seconds
                    self.latest[(group, pid)] = seconds

    def split(self) -> dict[str, float]:
        """Core-seconds since the start: each group, ``other processes`` and ``idle``."""
        self.sample()
        busy0, total0 = self.started
        busy1, total1 = machine_jiffies()
        machine_busy = (busy1 - busy0) / CLOCK_TICKS
        machine_total = (total1 - total0) / CLOCK_TICKS
        groups: Counter[str] = Counter()
        for (group, pid), seconds in self.latest.items():
            groups[group] += seconds - self.baseline.get(pid, 0.0)
        figures = dict(groups.most_common())
        figures["other processes"] = max(0.0, machine_busy - sum(groups.values()))
        figures["idle"] = max(0.0, machine_total - machine_busy)
        return figures

    def report(self, elapsed: float) -> str:
        parts = [f"{name} {seconds:.0f}" for name, seconds in self.split().items()]
        cores = os.cpu_count() or 1
        return f"CPU during the sale, core-seconds of {cores} cores x {elapsed:.0f} s: " + ", ".join(parts)


def profile_summary(path: Path, *, top: int = 10) -> list[str]:
    """Where one web worker spent its (non-idle) time, from py-spy's raw output
    (collapsed stacks: "func (path:line);func (path:line);... count", paths relative to
    sys.path): self time by package and by function, and inclusive time of the project's
    own functions."""
    by_package: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        leaf_path = frames[-1].rpartition(" (")[2].rstrip(")")
        by_package[leaf_path.split("/")[0].removesuffix(".py")] += samples
        by_leaf[frames[-1]] += samples
        for frame in set(frames):
            if frame.rpartition(" (")[2].startswith(PROJECT_PACKAGES):
                own[frame] += samples
    if not total:
        return ["py-spy recorded no samples"]
    lines = [f"py-spy: {total} samples (100/s) of one web worker's busy threads"]
    for title, counter in (
        ("self time by package", by_package),
        ("self time by function", by_leaf),
        ("project functions, inclusive", own),
    ):
        lines.append(f"  {title}:")
        lines += [f"    {n / total:6.1%}  {name}" for name, n in counter.most_common(top)]
    return lines


def py_spy_argv(pid: int, output: Path, seconds: float) -> list[str]:
    """py-spy recording one process at 100 Hz into raw collapsed stacks (SIGINT writes it)."""
    from bench.system import executable

    return [executable("py-spy"), "record", "-p", str(pid), "-o", str(output), "--format", "raw",
            "-r", "100", "--nonblocking", "-d", str(int(seconds))]  # fmt: skip
