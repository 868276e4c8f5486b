"""A :class:`~helpers.capture.Capture` as JSON, to save and load (notebook 01).

A saved capture is one JSON object::

    {"format": "tls-course-capture/1",
     "label": "...",
     "chunks": [{"direction": "c2s", "t": 0.0012, "data": "16030100f8..."}, ...],
     "info": {...}}

Chunk data is hex. ``info`` holds whatever the endpoints reported; bytes in it (a
certificate in DER, say) become ``{"$bytes": "<hex>"}`` and come back as bytes.
Values JSON cannot hold (an :class:`ssl.SSLSession`, for instance) are left out: they
stay in memory only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chunks import Chunk

if TYPE_CHECKING:
    from .recording import Capture


def _capture_dict(capture: Capture) -> dict[str, Any]:
    return {
        "format": "tls-course-capture/1",
        "label": capture.label,
        "chunks": [
            {"direction": c.direction, "t": c.t, "data": c.data.hex()} for c in list(capture.chunks)
        ],
        "info": _to_json(capture.info),
    }


def _capture_parts(data: dict[str, Any]) -> tuple[list[Chunk], str, dict[str, Any]]:
    """``(chunks, label, info)`` of a dict written by :func:`_capture_dict`."""
    chunks = [
        Chunk(c["direction"], bytes.fromhex(c["data"]), float(c["t"])) for c in data["chunks"]
    ]
    return chunks, data.get("label", ""), _from_json(data.get("info", {}))


def _to_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items() if _json_ok(v)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value if _json_ok(v)]
    return value


def _json_ok(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool, bytes, bytearray)):
        return True
    if isinstance(value, (dict, list, tuple)):
        return True
    return False  # SSLSession objects and the like stay in memory only


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
