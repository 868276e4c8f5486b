"""How decoded objects show themselves in a notebook (introduced in notebook 06).

Every dataclass of this package (a :class:`~helpers.handshake.Record`, a
:class:`~helpers.handshake.ClientHello`, an :class:`~helpers.handshake.Alert`, ...)
lists its fields once, as ``(name, value)`` rows in ``_rows()``; the :class:`_Display`
mixin turns those rows into the small HTML table Jupyter shows when a cell ends with
the object. Bytes are shown as a short hex prefix (``_hex``); lists, flags and nested
values are flattened to one readable line (``_describe``). Nothing here parses.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any


def _hex(data: bytes, limit: int = 16) -> str:
    text = data[:limit].hex(" ")
    return text + (" …" if len(data) > limit else "")


def _html_table(title: str, rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return (
        "<table class='tls-table'>"
        f"<caption style='text-align:left;font-weight:bold'>{html.escape(title)}</caption>"
        f"{body}</table>"
    )


class _Display:
    """Mixin: ``_rows()`` feeds both ``__repr__``-friendly and HTML views."""

    def _title(self) -> str:
        return type(self).__name__

    def _rows(self) -> list[tuple[str, Any]]:  # pragma: no cover - overridden
        return []

    def _repr_html_(self) -> str:
        return _html_table(self._title(), self._rows())


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_describe(v) for v in value) if value else "(empty)"
    if isinstance(value, bytes):
        return _hex(value, 24) if value else "(empty)"
    if isinstance(value, bool):
        return "present" if value else "absent"
    return str(value)
