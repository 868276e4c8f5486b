"""A recorded connection: :class:`Capture` (introduced in notebook 01; decoded in notebook 06).

A :class:`Capture` is a list of :class:`~helpers.capture.Chunk` objects, the bytes of
one TLS connection both ways in the order they travelled, plus ``info``: what the
endpoints reported. Everything else is read off those bytes on demand, never stored:

* the raw bytes of each direction (``client_bytes``, ``server_bytes``) and its
  complete records (``records()``);
* the plaintext hellos, decoded (``client_hello``, ``server_hello``,
  ``hello_retry_request``), and so the negotiated ``version`` and ``cipher_suite``:
  the only handshake messages TLS 1.3 leaves readable;
* every record, labelled (``events()``, from :mod:`helpers.capture.events`).

Because nothing is cached, a capture that a :class:`~helpers.capture.Relay` is still
filling can be read at any moment. How it shows in a notebook is in
:mod:`helpers.capture.display`; how it is saved, in :mod:`helpers.capture.saving`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ParseError
from ..handshake import (
    ClientHello,
    HandshakeMessage,
    HandshakeParser,
    Record,
    RecordParser,
    ServerHello,
    parse_client_hello,
    parse_server_hello,
)
from .chunks import Chunk, Direction
from .display import _capture_html
from .events import Event, _events_from_chunks
from .saving import SECRETS_WARNING, _capture_dict, _capture_parts, _read, _write

__all__ = ["Capture"]


class Capture:
    """The bytes of one TLS connection, both ways, in the order they travelled.

    ``chunks`` is a list of :class:`Chunk`; a :class:`Relay` appends to it while the
    connection is live. ``info`` holds what the endpoints reported (negotiated version,
    cipher, the server's certificate in DER, a key log for :mod:`helpers.tls13`, errors).
    :meth:`save` writes all of it except the secrets (the key log): see
    :mod:`helpers.capture.saving`.
    """

    def __init__(
        self, chunks: Iterable[Chunk] = (), label: str = "", info: dict[str, Any] | None = None
    ) -> None:
        self.chunks: list[Chunk] = list(chunks)
        self.label = label
        self.info: dict[str, Any] = dict(info or {})

    # --- raw bytes
    def data(self, direction: Direction) -> bytes:
        """Every byte sent one way, concatenated."""
        return b"".join(c.data for c in list(self.chunks) if c.direction == direction)

    @property
    def client_bytes(self) -> bytes:
        return self.data("c2s")

    @property
    def server_bytes(self) -> bytes:
        return self.data("s2c")

    @property
    def duration(self) -> float:
        chunks = list(self.chunks)
        return chunks[-1].t if chunks else 0.0

    def records(self, direction: Direction) -> list[Record]:
        """The complete TLS records sent one way (a trailing partial record is ignored)."""
        return RecordParser().feed(self.data(direction))

    # --- decoded hellos
    def _hellos(self, direction: Direction) -> list[HandshakeMessage]:
        """The plaintext hello-phase messages of one direction, until encryption starts.

        Stops at the first application_data record (TLS 1.3) or at the first handshake
        record after a ChangeCipherSpec once a real ServerHello has been seen (TLS 1.2:
        that record is the encrypted Finished). A HelloRetryRequest does not stop it.
        """
        parser = HandshakeParser()
        messages: list[HandshakeMessage] = []
        try:
            records = self.records(direction)
        except ParseError:
            records = []
        ccs = False
        for record in records:
            if record.content_type == 23:
                break
            if record.content_type == 20:
                ccs = True
            if record.content_type != 22:
                continue
            if (
                ccs
                and direction == "s2c"
                and any(m.msg_type == 2 and m.type_name == "ServerHello" for m in messages)
            ):
                break
            if ccs and direction == "c2s" and len([m for m in messages if m.msg_type == 1]) != 1:
                break  # only a second ClientHello (after HelloRetryRequest) follows a CCS
            messages += parser.feed(record.payload)
        return messages

    @property
    def client_hello(self) -> ClientHello | None:
        """The first ClientHello, decoded; None if there is none."""
        hellos = self.client_hellos
        return hellos[0] if hellos else None

    @property
    def client_hellos(self) -> list[ClientHello]:
        """Every ClientHello (two after a HelloRetryRequest)."""
        hellos = []
        for message in self._hellos("c2s"):
            if message.msg_type == 1:
                try:
                    hellos.append(parse_client_hello(message.body, offset=message.offset + 4))
                except ParseError:
                    break
        return hellos

    def _server_hellos(self) -> list[ServerHello]:
        hellos = []
        for message in self._hellos("s2c"):
            if message.msg_type == 2:
                try:
                    hellos.append(parse_server_hello(message.body, offset=message.offset + 4))
                except ParseError:
                    break
        return hellos

    @property
    def server_hello(self) -> ServerHello | None:
        """The ServerHello (not a HelloRetryRequest), decoded; None if there is none."""
        for hello in self._server_hellos():
            if not hello.is_hello_retry_request:
                return hello
        return None

    @property
    def hello_retry_request(self) -> ServerHello | None:
        for hello in self._server_hellos():
            if hello.is_hello_retry_request:
                return hello
        return None

    @property
    def version(self) -> str | None:
        """Negotiated version (``"TLSv1.3"``): ServerHello's supported_versions, else legacy_version."""
        hello = self.server_hello
        return hello.version if hello is not None else None

    @property
    def cipher_suite(self) -> str | None:
        hello = self.server_hello
        return hello.cipher_suite_name if hello is not None else None

    # --- events
    def events(self, *, strict: bool = True) -> list[Event]:
        """Cut both directions into records and label them (see :mod:`helpers.capture.events`).

        Raises :class:`ParseError` if a direction is not TLS (plain HTTP, garbage). With
        ``strict=False`` that direction just stops producing events, and the error is
        kept in ``self.info["parse_error"]``.
        """
        events, error = self._events(strict)
        if error is not None:
            self.info["parse_error"] = error
        return events

    def _events(self, strict: bool) -> tuple[list[Event], str | None]:
        chunks = list(self.chunks)
        return _events_from_chunks(chunks, tls13=self.version == "TLSv1.3", strict=strict)

    # --- display
    def __repr__(self) -> str:
        label = f"{self.label!r}, " if self.label else ""
        version = self.version or "no ServerHello"
        return (
            f"Capture({label}{version}, {len(self.chunks)} chunks, "
            f"{len(self.client_bytes)} bytes c2s / {len(self.server_bytes)} bytes s2c)"
        )

    def _repr_html_(self) -> str:
        return _capture_html(self)

    # --- saving
    def to_dict(self, *, include_keylog: bool = False) -> dict[str, Any]:
        """A JSON-friendly dict (bytes as hex); :meth:`from_dict` reverses it.

        Secrets (the key log, private keys, ...) are left out and listed under
        ``"withheld"`` unless ``include_keylog=True``, which warns: see
        :mod:`helpers.capture.saving`.
        """
        data, secret = _capture_dict(self, include_keylog)
        if secret:
            warnings.warn(SECRETS_WARNING, UserWarning, stacklevel=2)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Capture:
        """The capture a :meth:`to_dict` dict describes; :class:`ParseError` if it is malformed."""
        return cls(*_capture_parts(data))

    def save(self, path: str | os.PathLike[str], *, include_keylog: bool = False) -> Path:
        """Write the capture as JSON, without its key log or any other secret by default.

        Save your own recordings under ``build/`` (git-ignored), not in the repository.
        ``include_keylog=True`` keeps the key log so :mod:`helpers.tls13` can decrypt the
        loaded capture later; it warns, and writes the file with mode 0600, because
        whoever reads that file can decrypt the whole connection.
        """
        path = Path(path)
        data, secret = _capture_dict(self, include_keylog)
        if secret:
            warnings.warn(SECRETS_WARNING, UserWarning, stacklevel=2)
        _write(path, json.dumps(data, indent=1) + "\n", private=secret)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Capture:
        """Read a capture :meth:`save` wrote; :class:`ParseError` if the file is not one.

        A missing file or a directory is a :class:`~helpers.errors.UsageError`.
        """
        data, name = _read(path)
        return cls(*_capture_parts(data, name))
