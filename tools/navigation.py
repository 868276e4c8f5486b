"""Generate the series' navigation from the notebooks' own titles.

Every lesson's first line is ``# NN · Title``. From those titles this script writes:

* the table of notebooks in README.md, between ``<!-- notebooks:start -->`` and
  ``<!-- notebooks:end -->``;
* the last cell of every lesson: a markdown cell marked ``<!-- navigation -->`` with
  links to the previous and the next notebook.

Run ``python tools/navigation.py`` after adding or renaming a notebook;
``--check`` only reports what is out of date (the tests use it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
MARKER = "<!-- navigation -->"
TITLE = re.compile(r"^# (\d\d) · (.+)$", re.M)


def titles() -> list[tuple[Path, str, str]]:
    found = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0].source
        match = TITLE.match(first)
        if not match:
            raise SystemExit(f"{path.name}: the first cell must start with '# NN · Title'")
        found.append((path, match.group(1), match.group(2).strip()))
    return found


def navigation_cell(index: int, series: list[tuple[Path, str, str]]) -> str:
    parts = []
    if index > 0:
        path, number, title = series[index - 1]
        parts.append(f"**Previous:** [{number} · {title}]({path.name})")
    if index + 1 < len(series):
        path, number, title = series[index + 1]
        parts.append(f"**Next:** [{number} · {title}]({path.name})")
    return f"{MARKER}\n---\n" + " · ".join(parts)


#: The "you will..." column lives in notebook 00's map of the series (one source of truth);
#: notebook 00 is not in its own map.
START_HERE_WILL = "check your Python and OpenSSL, see what changed version by version, open a helper"
WILL_ROW = re.compile(r"^\| (\d\d) \| [^|]+ \| (.+?) \|$", re.M)


def you_will() -> dict[str, str]:
    """Notebook number -> what the learner will do there, from notebook 00's table."""
    start = sorted(NOTEBOOKS.glob("00_*.ipynb"))
    found = {"00": START_HERE_WILL}
    for cell in nbformat.read(start[0], as_version=4).cells if start else []:
        if cell.cell_type == "markdown" and "you will" in cell.source:
            found.update(dict(WILL_ROW.findall(cell.source)))
    return found


def readme_table(series: list[tuple[Path, str, str]]) -> str:
    will = you_will()
    rows = [f"| {n} | [{t}](notebooks/{p.name}) | {will.get(n, '')} |" for p, n, t in series]
    return "\n".join(["| # | notebook | you will... |", "|---|---|---|", *rows])


def update(check: bool) -> list[str]:
    """Bring README and notebooks up to date; return what was (or would be) changed."""
    series = titles()
    stale = []
    for index, (path, _, _) in enumerate(series):
        nb = nbformat.read(path, as_version=4)
        wanted = navigation_cell(index, series)
        last = nb.cells[-1] if nb.cells else None
        if last is not None and last.cell_type == "markdown" and MARKER in last.source:
            if last.source == wanted:
                continue
            last.source = wanted
        else:
            nb.cells.append(nbformat.v4.new_markdown_cell(wanted))
        stale.append(path.name)
        if not check:
            nbformat.write(nb, path)
    text = README.read_text()
    block = re.compile(r"(<!-- notebooks:start -->\n).*?(\n<!-- notebooks:end -->)", re.S)
    new = block.sub(lambda m: m.group(1) + readme_table(series) + m.group(2), text)
    if new != text:
        stale.append("README.md")
        if not check:
            README.write_text(new)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    stale = update(args.check)
    if args.check and stale:
        print("out of date (run `make nav`):", ", ".join(stale))
        return 1
    if stale:
        print("updated:", ", ".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
