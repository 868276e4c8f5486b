"""A :class:`~helpers.capture.Capture` as JSON, to save and load (notebook 01; notebook 06 loads one).

A saved capture is one JSON object::

    {"format": "tls-course-capture/1",
     "label": "...",
     "chunks": [{"direction": "c2s", "t": 0.0012, "data": "16030100f8..."}, ...],
     "info": {...},
     "withheld": ["info.keylog"]}

Chunk data is hex. ``info`` holds whatever the endpoints reported; bytes in it (a
certificate in DER, say) become ``{"$bytes": "<hex>"}`` and come back as bytes.
Values JSON cannot hold (an :class:`ssl.SSLSession`, for instance) are left out: they
stay in memory only.

Secrets stay in memory unless you ask
-------------------------------------
:func:`~helpers.capture.capture_memory` keeps the connection's **key log** in
``info["keylog"]``, so that :mod:`helpers.tls13` can decrypt the capture. In memory
that is what you want. In a file it is a liability: a key log decrypts every byte of
the connection (``helpers/tls13/keylog.py`` says why), and a file saved inside the
repository ends up in git. So :meth:`Capture.to_dict` and :meth:`Capture.save` leave out
every secret they recognise, at any depth of ``info``:

* a value under a secret's name (:data:`SECRET_NAMES`: ``keylog``, ``private_key``,
  ``master_secret``, ``session_ticket``, ...);
* any text that holds an NSS key-log line or a PEM private key, whatever its name.

What they left out is listed under ``"withheld"``, so a reader of the file knows why
``info["keylog"]`` is missing. ``include_keylog=True`` keeps it all, with a warning,
and the file is then written with mode 0600 (only you can read it).

What a saved capture always holds: the bytes on the wire (what anyone on the path saw),
the certificates, and the plaintext the two endpoints exchanged
(``request_received``/``response_received``): don't record a real password.

Loading checks what it reads
----------------------------
A saved capture is data from somewhere else (a colleague, a download). :meth:`Capture.load`
and :meth:`Capture.from_dict` check its shape and its ``format`` and raise
:class:`~helpers.errors.ParseError` with one sentence naming what is wrong (a missing
file is a :class:`~helpers.errors.UsageError`); nesting is bounded by :data:`MAX_DEPTH`,
so a hostile file cannot raise ``RecursionError``. Loading never runs code: it is JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ParseError, UsageError
from .chunks import DIRECTIONS, Chunk

if TYPE_CHECKING:
    from .recording import Capture

FORMAT = "tls-course-capture/1"

#: How deep ``info`` may nest (dicts in lists in dicts...); real captures use 3 levels.
MAX_DEPTH = 64

#: ``info`` keys whose values are secret, compared case-insensitively.
SECRET_NAMES = frozenset(
    {
        "keylog",
        "key_log",
        "sslkeylogfile",
        "secret",
        "secrets",
        "private_key",
        "master_secret",
        "session",
        "session_ticket",
        "psk",
    }
)

# An NSS key-log line (RFC 8446 secret labels, TLS 1.2's CLIENT_RANDOM) or a PEM private key.
# The label may follow a letter of an escape (JSON's "\nCLIENT_RANDOM"), not another label.
_SECRET_TEXT = re.compile(
    r"(?<![A-Z0-9_])(?:CLIENT_RANDOM|[A-Z_]*TRAFFIC_SECRET(?:_\d+)?|(?:EARLY_)?EXPORTER_SECRET)"
    r"[ \t]+[0-9a-fA-F]{64}[ \t]+[0-9a-fA-F]{16,}"
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
)

#: What ``include_keylog=True`` warns, in one sentence.
SECRETS_WARNING = (
    "This capture is saved with its key log (and any other secret in info), and whoever "
    "reads the file can decrypt every byte of the connection: keep it out of git "
    "(build/ is ignored) and delete it after the lesson."
)

_HINT = "Capture.load reads the JSON that Capture.save writes; was the file edited, or made by another tool?"


def is_secret(name: str, value: Any) -> bool:
    """Whether ``info[name] = value`` must stay out of a file (see the module docstring)."""
    if name.lower() in SECRET_NAMES:
        return True
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    return isinstance(value, str) and _SECRET_TEXT.search(value) is not None


# --- writing


def _capture_dict(capture: Capture, include_secrets: bool = False) -> tuple[dict[str, Any], bool]:
    """The JSON-friendly dict, and whether it holds a secret (only with ``include_secrets``)."""
    found: list[str] = []
    data: dict[str, Any] = {
        "format": FORMAT,
        "label": capture.label,
        "chunks": [
            {"direction": c.direction, "t": c.t, "data": c.data.hex()} for c in list(capture.chunks)
        ],
        "info": _to_json(dict(capture.info), "info", include_secrets, found, 0),
    }
    if found and not include_secrets:
        data["withheld"] = found
    return data, bool(found) and include_secrets


def _to_json(value: Any, path: str, keep: bool, found: list[str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise UsageError(
            f"The capture's {path} is nested more than {MAX_DEPTH} levels deep.",
            "Keep info flat: it holds what the endpoints reported.",
        )
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not _json_ok(v):
                continue
            where = f"{path}.{k}"
            if is_secret(str(k), v):
                found.append(where)
                if not keep:
                    continue
            out[str(k)] = _to_json(v, where, keep, found, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for i, v in enumerate(value):
            if not _json_ok(v):
                continue
            where = f"{path}[{i}]"
            if is_secret("", v):
                found.append(where)
                if not keep:
                    continue
            items.append(_to_json(v, where, keep, found, depth + 1))
        return items
    return value


def _json_ok(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool, bytes, bytearray)):
        return True
    if isinstance(value, (dict, list, tuple)):
        return True
    return False  # SSLSession objects and the like stay in memory only


def _write(path: Path, text: str, private: bool) -> None:
    """Write ``text``; mode 0600 from the first byte when it holds secrets."""
    try:
        if not private:
            path.write_text(text, encoding="utf-8")
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as out:
            if hasattr(os, "fchmod"):
                os.fchmod(out.fileno(), 0o600)  # the file may have existed with a wider mode
            out.write(text)
    except OSError as exc:
        raise UsageError(
            f"Cannot write the capture to {_shown(path)}: {exc.strerror or exc}.",
            "Check that the folder exists and that you may write there (build/ is a good place).",
        ) from None


# --- reading


def _read(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """The parsed JSON of a saved capture file, and the file's name for messages."""
    try:
        where = Path(path)
        raw = where.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"There is no file {_shown(path)}.",
            "Check the path: Capture.load reads a .json file that Capture.save wrote.",
        ) from None
    except IsADirectoryError:
        raise UsageError(
            f"{_shown(path)} is a directory, not a saved capture.",
            "Pass the path of the .json file.",
        ) from None
    except (OSError, TypeError, ValueError) as exc:  # permissions, a too-long name, a NUL byte
        raise UsageError(
            f"Cannot read a capture from {_shown(path)}: {getattr(exc, 'strerror', None) or exc}.",
            "Pass the path of a .json file that Capture.save wrote.",
        ) from None
    name = where.name
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"{name} is not a saved capture: it is not UTF-8 text (byte {exc.start} is "
            f"0x{raw[exc.start]:02x})",
            "A saved capture is JSON; a .pcap or .pcapng file opens in Wireshark instead.",
        ) from None
    try:
        return json.loads(text), name
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{name} is not a saved capture: it is not JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})",
            _HINT,
        ) from None
    except RecursionError:
        raise ParseError(
            f"{name} is not a saved capture: its JSON is nested too deeply to read", _HINT
        ) from None


def _capture_parts(
    data: Any, source: str = "The dict given to Capture.from_dict"
) -> tuple[list[Chunk], str, dict[str, Any]]:
    """``(chunks, label, info)`` of a dict written by :func:`_capture_dict`, checked."""

    def bad(reason: str) -> ParseError:
        return ParseError(f"{source} is not a saved capture: {reason}", _HINT)

    if not isinstance(data, dict):
        raise bad(f"it is a JSON {_kind(data)}, and a saved capture is an object")
    if "format" not in data:
        raise bad(f'it has no "format" field (Capture.save writes "{FORMAT}")')
    if data["format"] != FORMAT:
        raise bad(f'its format is {_short(data["format"])}, not "{FORMAT}"')
    if not isinstance(data.get("chunks"), list):
        raise bad('"chunks" is ' + ("missing" if "chunks" not in data else _a(data["chunks"])))
    chunks = []
    for i, c in enumerate(data["chunks"]):
        if not isinstance(c, dict):
            raise bad(f"chunk {i} is {_a(c)}, not an object")
        for key in ("direction", "t", "data"):
            if key not in c:
                raise bad(f'chunk {i} has no "{key}"')
        if c["direction"] not in DIRECTIONS:
            raise bad(f'chunk {i} has direction {_short(c["direction"])}, not "c2s" or "s2c"')
        t = c["t"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise bad(f"chunk {i} has a time t that is not a number of seconds")
        chunks.append(
            Chunk(
                c["direction"],
                _hex(c["data"], bad, f"chunk {i}'s data is not hex"),
                float(t),
            )
        )
    label = data.get("label", "")
    if not isinstance(label, str):
        raise bad(f"its label is {_a(label)}, not a string")
    info = data.get("info", {})
    if not isinstance(info, dict):
        raise bad(f"its info is {_a(info)}, not an object")
    return chunks, label, _from_json(info, "info", bad, 0)


def _from_json(value: Any, path: str, bad: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise bad(f"its {path.split('.')[0]} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return _hex(value["$bytes"], bad, f'{path} holds "$bytes" that are not hex')
        return {k: _from_json(v, f"{path}.{k}", bad, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v, f"{path}[{i}]", bad, depth + 1) for i, v in enumerate(value)]
    return value


def _hex(value: Any, bad: Any, reason: str) -> bytes:
    if not isinstance(value, str):
        raise bad(reason)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise bad(reason) from None


def _kind(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if isinstance(value, bool) or value is None:
        return "true/false/null"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _a(value: Any) -> str:
    kind = _kind(value)
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _short(value: Any) -> str:
    text = (
        json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else _a(value)
    )
    return text if len(text) <= 40 else text[:37] + '..."'


def _shown(path: Any) -> str:
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
    return text if len(text) <= 120 else text[:117] + "..."
