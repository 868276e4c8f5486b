"""How a :class:`~helpers.capture.Capture` shows itself in a notebook (notebook 01).

End a cell with a capture and Jupyter shows one table row per TLS record: when it
travelled, which way, its record type and size, the handshake messages it carried and
whether it was encrypted (the events of :mod:`helpers.capture.events`). A capture that
is not TLS (plain HTTP through a relay, say) shows its chunks instead, as text, so you
can read the password that went over the wire. Everything that came off the wire is
escaped: recorded bytes are data, never markup.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .chunks import ARROWS

if TYPE_CHECKING:
    from .recording import Capture


def _capture_html(capture: Capture) -> str:
    title = html.escape(capture.label or "Capture")
    head = (
        "<tr><th>#</th><th>t (ms)</th><th>direction</th><th>record</th>"
        "<th>bytes</th><th>contents</th><th>encrypted</th></tr>"
    )
    events, error = capture._events(strict=False)
    rows = []
    if events or not capture.chunks:
        for i, e in enumerate(events):
            rows.append(
                f"<tr><td>{i}</td><td>{e.t * 1000:.1f}</td><td>{ARROWS[e.direction]}</td>"
                f"<td>{html.escape(e.record.type_name)}</td><td>{e.size}</td>"
                f"<td style='text-align:left'>{html.escape(e.label)}</td>"
                f"<td>{'🔒 yes' if e.encrypted else 'no'}</td></tr>"
            )
    else:  # not TLS (plain HTTP, say): show the bytes themselves
        head = "<tr><th>#</th><th>t (ms)</th><th>direction</th><th>bytes</th><th>data</th></tr>"
        for i, c in enumerate(list(capture.chunks)):
            text = html.escape(c.data[:200].decode("latin-1")) + ("…" if len(c.data) > 200 else "")
            rows.append(
                f"<tr><td>{i}</td><td>{c.t * 1000:.1f}</td><td>{ARROWS[c.direction]}</td>"
                f"<td>{len(c.data)}</td><td style='text-align:left'><pre>{text}</pre></td></tr>"
            )
    summary = f"{html.escape(capture.version or 'not TLS / no ServerHello')}"
    if capture.cipher_suite:
        summary += f", {html.escape(capture.cipher_suite)}"
    note = f"<p>{html.escape(error)}</p>" if error else ""
    return (
        f"<table class='tls-capture'><caption style='text-align:left'><b>{title}</b>: "
        f"{summary}</caption>{head}{''.join(rows)}</table>{note}"
    )
