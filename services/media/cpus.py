"""How many CPUs this process may really use: the container's CPU limit, not the node's cores.

    workers = usable_cpus()        # `[recordings] jobs = 0` runs this many ffmpeg processes at once

A Kubernetes CPU limit (or `docker run --cpus`) is a CFS quota on the process's cgroup: so many
microseconds of CPU per period. `os.cpu_count()` still reports every core of the node, so a pod
limited to 2 CPUs on a 32-core node would start 32 transcodes and be throttled all the time.
The quota is read from cgroup v2 (`cpu.max`: "<quota> <period>" or "max <period>") or cgroup v1
(`cpu.cfs_quota_us` / `cpu.cfs_period_us`, -1 for none), for the process's own cgroup and every
ancestor (a limit may sit on a parent), and rounded up; the CPUs the process may run on
(its affinity, e.g. a cpuset) cap the result.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP, affinity: int | None = None) -> int:
    """The CPU quota of this process's cgroups rounded up, at most its affinity; at least 1."""
    cores = affinity if affinity is not None else _affinity()
    quota = cgroup_quota(root, proc_cgroup)
    return max(1, min(cores, math.ceil(quota)) if quota is not None else cores)


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The smallest CPU quota (in CPUs) on the way from this process's cgroup(s) to the root; None: no limit."""
    quotas = [q for folder in _cgroup_folders(root, proc_cgroup) if (q := _quota_in(folder)) is not None]
    return min(quotas) if quotas else None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cgroup_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """Folders that may hold this process's CPU limit: its cgroup and each ancestor, for v2 and v1."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    folders: list[Path] = []
    for line in lines:  # "0::/path" (v2) or "4:cpu,cpuacct:/path" (v1)
        _, controllers, path = ([*line.split(":", 2), "", ""])[:3]
        if controllers == "":
            bases = [root, root / "unified"]
        elif "cpu" in controllers.split(","):
            bases = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
        else:
            continue
        parts = [p for p in path.strip("/").split("/") if p and p != ".."]
        for base in bases:
            for depth in range(len(parts), -1, -1):
                folders.append(base.joinpath(*parts[:depth]))
    if not folders:  # no /proc (or an unusual layout): the mount points themselves
        folders = [root, root / "cpu", root / "cpu,cpuacct"]
    return list(dict.fromkeys(folders))


def _quota_in(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            return float(quota) / float(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = float((folder / "cpu.cfs_quota_us").read_text())
        period_us = float((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
