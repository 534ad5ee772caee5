"""The facts resource detection reads (``HostFacts`` in the core), as this
machine and interpreter report them. The core decides which become attributes
and how they are spelled; what the platform does not offer is left out."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional

# The container id is on the first lines of cgroup and mountinfo; a host with
# thousands of mounts must not make configuration slow.
_MAX_PROC_TEXT = 64 * 1024


def _read_capped(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PROC_TEXT)
    except OSError:
        return None
    if len(data) == _MAX_PROC_TEXT:
        # A line cut short could end in what looks like a whole id.
        data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8", "replace")


def gather() -> Dict[str, Any]:
    """Facts of this process, as the ``host`` member of the core's configuration."""
    import platform
    import socket

    facts: Dict[str, Any] = {}

    def put(key: str, value: Optional[str]) -> None:
        if value:
            facts[key] = value

    try:
        put("host_name", socket.gethostname())
    except OSError:
        pass
    put("host_arch", platform.machine())
    put("os_type", sys.platform)
    system, release = platform.system(), platform.release()
    put("os_description", f"{system} {release}".strip())
    facts["process_pid"] = os.getpid()
    exe = sys.executable
    if exe:
        put("process_executable_name", os.path.basename(exe))
        put("process_executable_path", exe)
    put("process_runtime_name", sys.implementation.name)
    put("process_runtime_version", platform.python_version())
    put("process_runtime_description", sys.version.replace("\n", " "))
    if sys.platform.startswith("linux"):
        put("cgroup", _read_capped("/proc/self/cgroup"))
        put("mountinfo", _read_capped("/proc/self/mountinfo"))
    return facts
