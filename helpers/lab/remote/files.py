"""What a joined lab writes to the student's machine: public files only (notebook 02).

:class:`JoinedFiles` has the same attribute names as :class:`helpers.lab.build.LabFiles`
where they make sense, so code written for a local lab reads a joined one unchanged:
``ca_bundle``, ``crl``, ``chains``, and the client certificate and key if the teacher
shares them. ``keys`` is empty and says why when asked (:class:`_KeysStayHome`): server
keys never leave the teacher's machine. :func:`_write` replaces a file atomically,
because another kernel on the same machine may be reading it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import LabError
from .description import LAB_ENV


class _KeysStayHome(Mapping[str, Path]):
    """``files.keys`` of a joined lab: asking for a server key explains why there is none."""

    def __getitem__(self, name: str) -> Path:
        raise LabError(
            f"The {name!r} server's private key stays on the teacher's machine; a joined lab "
            "has only certificates (files.chains), the CA and the CRL.",
            f"For exercises that build their own server, unset {LAB_ENV} and restart the "
            "kernel to use a lab on your own machine.",
        )

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True)
class JoinedFiles:
    """What a student's machine holds for a joined lab (all public, in the per-user cache).

    The same attribute names as :class:`helpers.lab.build.LabFiles` where they make sense:
    ``chains`` are the certificate chains each scenario's server sends; ``keys`` has none.
    """

    directory: Path
    ca_bundle: Path
    crl: Path
    chains: Mapping[str, Path]
    client_chain: Path | None
    client_key: Path | None
    keys: Mapping[str, Path] = field(default_factory=_KeysStayHome)


def _write(path: Path, data: bytes) -> None:
    """Write public material atomically (another kernel may be reading the same file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
