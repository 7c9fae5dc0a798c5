"""Write one benchmark's own section of bench/RESULTS.md, keeping every other section."""

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, lines: list[str], path: Path = RESULTS) -> None:
    """Replace the section that starts at ``heading`` (up to the next ``## `` heading) with
    ``lines``, or append it when absent. ``lines`` starts with ``heading`` itself."""
    body = path.read_text().splitlines() if path.exists() else []
    section = [*lines]
    while section and not section[-1].strip():
        section.pop()
    if heading in body:
        start = body.index(heading)
        end = next((i for i in range(start + 1, len(body)) if body[i].startswith("## ")), len(body))
        rest = body[end:]
        body = body[:start] + section + (["", *rest] if rest else [])
    else:
        while body and not body[-1].strip():
            body.pop()
        body = [*body, "", *section] if body else section
    path.write_text("\n".join(body) + "\n")


def machine() -> str:
    """CPUs (and the ones this process may use), CPU model and RAM, for a results header."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}{mem}"


def load_average() -> str:
    """The 1/5/15-minute load average: a shared machine's figures are read beside it."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
