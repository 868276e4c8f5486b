"""What a joined lab writes to the student's machine: public files only (notebook 02).

:class:`JoinedFiles` has the same attribute names as :class:`helpers.lab.build.LabFiles`
where they make sense, so code written for a local lab reads a joined one unchanged:
``ca_bundle``, ``crl``, ``chains``, and the client certificate and key if the teacher
shares them. ``keys`` is empty and says why when asked (:class:`_KeysStayHome`): server
keys never leave the teacher's machine.

Where, and why a new directory every time
-----------------------------------------
:func:`write_join` puts each join in a fresh directory::

    <cache>/joined/<CA fingerprint, 16 hex digits>/<host>_<port>/join-<time>-<random>/

It is filled under a hidden name and renamed into place in one step, so a directory
either is complete or does not exist. Nothing is ever rewritten: another kernel on the
same machine may be using the files of an earlier join (``requests.get(...,
verify=lab.ca_bundle)`` reads the file on every call), and a later join, even a refused
or hostile one, must not change what that kernel trusts. The fingerprint *and* the
endpoint are in the path, so two teachers, or a teacher and someone answering in the
teacher's place, never share a directory.

A running :class:`~helpers.lab.RemoteLab` holds a shared lock on its directory's
``.in-use`` file (``fcntl.flock``; the system drops it when the process ends).
:func:`prune` removes the joins nobody holds any more (they may hold a shared client
key), and, where there is no ``fcntl`` (Windows), the ones older than a week.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ... import pki
from ...errors import LabError
from .description import LAB_ENV
from .material import Material

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; pruning goes by age alone
    fcntl = None  # type: ignore[assignment]

#: Without fcntl, a join directory is pruned when it is older than this.
PRUNE_AFTER = 7 * 24 * 3600
#: An unfinished ``.joining-*`` directory older than this is a crashed join.
STALE_AFTER = 3600
IN_USE = ".in-use"


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
    """Create ``path`` with ``data``; never follow or replace an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _endpoint(host: str, port: int) -> str:
    """``10.0.0.5_8446``, ``fe80__1_8446``: the join endpoint as a safe directory name."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", host) + f"_{port}"


class InUse:
    """A shared lock on a join directory: "a kernel uses these files, do not prune them"."""

    def __init__(self, directory: Path) -> None:
        self._fd: int | None = os.open(directory / IN_USE, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the lock


def _held(directory: Path) -> bool:
    """Does a running kernel (this one or another) still use ``directory``?"""
    if fcntl is None:
        return time.time() - directory.stat().st_mtime < PRUNE_AFTER
    try:
        fd = os.open(directory / IN_USE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def prune(parent: Path, keep: Path) -> None:
    """Remove joins no running kernel uses, and crashed half-written ones (best effort)."""
    for old in parent.glob("*/*/join-*"):
        with contextlib.suppress(OSError):
            if old != keep and old.is_dir() and not _held(old):
                shutil.rmtree(old, ignore_errors=True)
    for stale in parent.glob("*/*/.joining-*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_AFTER:
                shutil.rmtree(stale, ignore_errors=True)
    # Files an older version of the course wrote straight into <fingerprint>/.
    for legacy in parent.glob("*/*.pem"):
        with contextlib.suppress(OSError):
            if time.time() - legacy.stat().st_mtime > STALE_AFTER:
                legacy.unlink()


def write_join(
    parent: Path, fingerprint: str, host: str, port: int, material: Material
) -> tuple[JoinedFiles, InUse]:
    """Write checked ``material`` into a fresh directory; return its files and its lock."""
    base = parent / fingerprint[:16].lower() / _endpoint(host, port)
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for level in (base.parent, base):  # 0700 at every level, not only the last
        level.mkdir(exist_ok=True, mode=0o700)
    name = f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
    tmp, final = base / f".joining-{name}", base / f"join-{name}"
    tmp.mkdir(mode=0o700)
    try:
        _write(tmp / "ca.pem", material.ca_pem)
        _write(tmp / "crl.pem", material.crl_pem)
        for scenario, pem in material.chains.items():
            _write(tmp / f"{scenario}-chain.pem", pem)
        if material.client_chain is not None and material.client_key is not None:
            _write(tmp / "client-chain.pem", material.client_chain)
            pki.write_private_key(tmp / "client-key.pem", material.client_key)  # mode 0600
        lock = InUse(tmp)  # the lock is on the file, so it survives the rename
        try:
            os.rename(tmp, final)  # the directory appears complete, or not at all
        except BaseException:
            lock.release()
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shared = material.client_chain is not None and material.client_key is not None
    files = JoinedFiles(
        directory=final,
        ca_bundle=final / "ca.pem",
        crl=final / "crl.pem",
        chains={scenario: final / f"{scenario}-chain.pem" for scenario in material.chains},
        client_chain=final / "client-chain.pem" if shared else None,
        client_key=final / "client-key.pem" if shared else None,
    )
    return files, lock
