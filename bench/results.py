"""Write one benchmark's own section of bench/RESULTS.md, keeping every other section."""

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
