"""Execute every notebook and render the series to HTML under build/html/.

``make html`` runs this. Each lesson runs top to bottom in a fresh kernel (offline,
like the tests), then nbconvert turns it into a page with its figures; an index
page lists the lessons in series order, so the course can be read without Jupyter.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from tests import notebooks as nbs
from tools.navigation import titles

OUT = nbs.ROOT / "build" / "html"


def render(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    ipython_dir = nbs.guarded_ipython_dir()
    pages = []
    series = titles()
    for path, _, _ in series:
        nb = nbformat.read(path, as_version=4)
        executed, seconds = nbs.execute(nb, path.parent, ipython_dir)
        body, _ = exporter.from_notebook_node(executed)
        # Links between lessons point at .ipynb files; on the site they are .html pages.
        for other, _, _ in series:
            body = body.replace(f'href="{other.name}"', f'href="{other.stem}.html"')
        page = out / f"{path.stem}.html"
        page.write_text(body)
        pages.append(page)
        print(f"{seconds:5.1f} s  {page.relative_to(nbs.ROOT)}")
    items = "\n".join(
        f'<li><a href="{p.stem}.html">{html.escape(n)} · {html.escape(t)}</a></li>'
        for p, n, t in series
    )
    (out / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>TLS in Python, hands-on</title>"
        "<style>body{font-family:sans-serif;max-width:46em;margin:3em auto;line-height:1.5}"
        "li{margin:.4em 0}</style></head><body><h1>TLS in Python, hands-on</h1>"
        "<p>Every lesson below was executed offline against the local lab when this site was "
        f"built.</p><ol start='0'>{items}</ol></body></html>"
    )
    pages.append(out / "index.html")
    return pages


if __name__ == "__main__":
    render()
    sys.exit(0)
