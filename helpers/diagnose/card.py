"""A :class:`~.result.Diagnosis` as an HTML card (notebooks 01 and 02).

A green or red header with the kind and the target, then the explanation, what this
connection showed, what to do, the raw facts (message, exception classes, verify code,
version, status, time) and the certificates the server sent, as a
:class:`helpers.cards.ChainCard`. Everything a server or an exception supplied is
escaped: a URL or a certificate name is data, never markup.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..cards import ChainCard

if TYPE_CHECKING:
    from .result import Diagnosis


# Every box sets its own text *and* background colour, so the card reads the same in
# light and dark JupyterLab themes (the rule helpers.cards follows too).
_GREEN, _RED, _FG, _MUTED, _BG, _BORDER = (
    "#1a7f37",
    "#cf222e",
    "#1f2328",
    "#57606a",
    "#f6f8fa",
    "#d0d7de",
)
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;"


def _diagnosis_html(d: Diagnosis) -> str:
    e = html.escape
    colour = _GREEN if d.ok else _RED
    verdict = "&#10004; OK" if d.ok else f"&#10008; {e(d.kind)}"
    rows: list[tuple[str, str]] = []
    if not d.ok:
        rows.append(("raw message", f"<code>{e(d.message)}</code>"))
        caught = e(d.exception or "")
        if d.cause and d.cause != d.exception:
            caught += f" &larr; inside it: {e(d.cause)}"
        rows.append(("exception", caught))
        if d.verify_code is not None:
            rows.append(("verify_code", f"{d.verify_code} ({e(d.verify_message or '')})"))
    if d.version:
        rows.append(("negotiated", f"{e(d.version)}, {e(d.cipher or '')}"))
    if d.status is not None:
        rows.append(("HTTP status", str(d.status)))
    if d.elapsed is not None:
        rows.append(("time", f"{d.elapsed * 1000:.0f} ms"))
    facts = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top;color:{_MUTED};"
        f"background:{_BG}'>{k}</th><td style='text-align:left;color:{_FG};background:{_BG}'>"
        f"{v}</td></tr>"
        for k, v in rows
    )
    para = f"margin:4px 0;color:{_FG}"
    detail = f"<p style='{para}'>{e(d.detail)}</p>" if d.detail else ""
    notes = "".join(f"<p style='margin:4px 0;color:{_MUTED}'>{e(n)}</p>" for n in d.notes)
    chain = ""
    if d.chain:
        source = f" (read by {e(d.chain_source)})" if d.chain_source else ""
        chain = (
            f"<div style='margin-top:6px;color:{_FG}'><b>Certificates the server sent</b>"
            f"{source}, leaf first:</div>{ChainCard(d.chain)._repr_html_()}"
        )
    return (
        f"<div class='tls-diagnosis' style='{_FONT}border:1px solid {_BORDER};border-radius:6px;"
        f"max-width:680px;margin:4px 0;color:{_FG};background:{_BG}'>"
        f"<div style='background:{colour};color:#fff;padding:6px 10px;border-radius:5px 5px 0 0'>"
        f"<b>{verdict}</b> &middot; <code style='color:#fff;background:{colour}'>{e(d.target)}</code>"
        f" via {e(d.via)}</div>"
        f"<div style='padding:6px 10px;background:{_BG}'>"
        f"<p style='{para}'>{e(d.explanation)}</p>{detail}"
        f"<p style='{para}'><b>What to do:</b> {e(d.fix)}</p>"
        f"<table style='margin:4px 0;background:{_BG}'>{facts}</table>{notes}{chain}</div></div>"
    )
