"""Pebble, Let's Encrypt's ACME test server, started for a test on loopback (issue 15).

Pebble (Debian package ``pebble``: 2.4.0 in bookworm, 2.6.0 in trixie, 2.10.0 in forky)
is a real, independent ACME server. :func:`running_pebble` starts it as a subprocess
with a configuration of its own, written to the test's temporary directory:

* **Ports.** Pebble's configuration takes fixed addresses (``listenAddress`` with port
  0 does not tell us which port it got), so :func:`free_port` binds port 0, reads the
  port and releases it; if another process takes it in between, Pebble exits with
  "address already in use" and we try again with new ports.
* **Its HTTPS certificate** is issued by a CA made with :mod:`helpers.pki` for this run
  (``localhost`` and ``127.0.0.1``); the client trusts that CA for the ACME connection.
  The CA that *issues* certificates is Pebble's own, new at each start: its root and
  intermediate come from the management interface (``/roots/0``,
  ``/intermediates/0``).
* **HTTP-01 for real.** ``httpPort`` is the port of our
  :class:`helpers.acme.http01.Http01Responder`; ``PEBBLE_VA_NOSLEEP=1`` only removes
  Pebble's random 0-15 s pause before validating. ``PEBBLE_VA_ALWAYS_VALID`` (which
  would skip validation) is removed from the environment, and Pebble keeps rejecting
  5 % of good nonces at random (``PEBBLE_WFE_NONCEREJECT`` unset), which the client
  must survive (RFC 8555 §6.5).
* **Names.** Pebble resolves an order's names itself, to connect to
  ``http://NAME:httpPort/``. With the system resolver only ``localhost`` works (from
  /etc/hosts; measured with 2.4.0, 2.6.0 and 2.10.0, each issues for it), and CI's
  loopback-only namespace has no DNS for anything else, so one test could order one
  name only. Instead Pebble gets ``-dnsserver 127.0.0.1:PORT`` (a flag in every
  Debian version), pointing at :class:`DnsResponder`: a few lines of RFC 1035 that
  answer ``A 127.0.0.1`` for the test's names under :data:`TEST_ZONE` and REFUSED for
  any other name, so Pebble never reaches a real resolver. Pebble 2.4.0 and 2.6.0 ask
  over UDP, 2.10.0 over TCP (measured), so it serves both. Pebble then resolves every
  name there, ``localhost`` included (AAAA first, then A; three times: it validates
  from three "perspectives").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography import x509

from helpers import pki

#: Why a Pebble test is skipped where the binary is missing (never in CI: .ci/run installs it).
SKIP_REASON = "pebble is not installed (apt-get install pebble; .ci/run installs it)"
#: RFC 6761 §6.2 reserves ``.test`` for testing: no real name can collide with ours.
TEST_ZONE = "pebble.test"


def pebble_binary() -> str | None:
    """The pebble executable (Debian installs /usr/bin/pebble), or None."""
    found = shutil.which("pebble")
    if found:
        return found
    return "/usr/bin/pebble" if os.access("/usr/bin/pebble", os.X_OK) else None


def pebble_version() -> str:
    """The installed package's version (Pebble 2.4.0 has no -version flag), for messages."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "pebble"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ DNS


class DnsResponder:
    """A DNS server (UDP and TCP) on 127.0.0.1 that knows a few names, all at 127.0.0.1.

    RFC 1035 §4.1: a message is a 12-byte header (ID, flags, four counts), then the
    question section (QNAME as length-prefixed labels, QTYPE, QCLASS), then answers.
    For a name in :attr:`names`: type A gets one answer, ``A 127.0.0.1`` (TTL 0); any
    other type (AAAA, CAA, ...) gets NOERROR with no answer (NODATA, RFC 2308 §2.2),
    so a client asking for AAAA in parallel still finds the A record. The AA
    (authoritative) bit is set: Go's resolver, which Pebble uses, treats a
    non-authoritative, non-recursive empty answer as a "lame referral". Any other name
    gets REFUSED (RCODE 5); a message it cannot parse gets FORMERR (RCODE 1).
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: set[str] = {n.lower().rstrip(".") for n in names}
        #: (name, qtype, "udp" or "tcp") of every question seen, for tests and debugging.
        self.queries: list[tuple[str, int, str]] = []
        # The same port number over UDP and TCP (separate port spaces): bind TCP to port
        # 0, then UDP to the port TCP got (retried in the rare case that one is taken).
        for _ in range(20):
            self._tcp = socket.create_server(("127.0.0.1", 0))
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self._udp.bind(self._tcp.getsockname()[:2])
                break
            except OSError:
                self._udp.close()
                self._tcp.close()
        else:
            raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")
        self._udp.settimeout(0.2)
        self._tcp.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve_udp, name="test-dns-udp", daemon=True),
            threading.Thread(target=self._serve_tcp, name="test-dns-tcp", daemon=True),
        ]

    @property
    def address(self) -> str:
        host, port = self._udp.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> DnsResponder:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)
        self._udp.close()
        self._tcp.close()

    def __enter__(self) -> DnsResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._udp.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self.answer(query, "udp")
            if answer is not None:
                with contextlib.suppress(OSError):
                    self._udp.sendto(answer, peer)

    def _serve_tcp(self) -> None:
        """RFC 1035 §4.2.2: over TCP each message is prefixed with its two-byte length.
        (Pebble 2.10 asks over TCP; 2.4 and 2.6 over UDP.)"""
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one_tcp, args=(conn,), daemon=True).start()

    def _one_tcp(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + 5
        with conn, contextlib.suppress(OSError, ValueError):
            while time.monotonic() < deadline and not self._stop.is_set():
                conn.settimeout(max(deadline - time.monotonic(), 0.01))
                head = _read_exactly(conn, 2)
                if head is None:
                    return
                query = _read_exactly(conn, struct.unpack("!H", head)[0])
                if query is None:
                    return
                answer = self.answer(query, "tcp")
                if answer is None:
                    return
                conn.sendall(struct.pack("!H", len(answer)) + answer)

    def answer(self, query: bytes, transport: str = "udp") -> bytes | None:
        """The response to one query message (None: not even a header to answer)."""
        if len(query) < 12:
            return None
        ident, flags, qdcount = struct.unpack("!HHH", query[:6])
        rd = flags & 0x0100  # echo "recursion desired"
        if flags & 0x8000 or qdcount != 1:  # a response, or not exactly one question
            return struct.pack("!HHHHHH", ident, 0x8400 | rd | 1, 0, 0, 0, 0)
        labels, offset = [], 12
        try:
            while True:
                length = query[offset]
                offset += 1
                if length == 0:
                    break
                if length > 63:  # a compression pointer has no place in a question
                    raise ValueError
                labels.append(query[offset : offset + length].decode("ascii"))
                offset += length
            qtype, qclass = struct.unpack("!HH", query[offset : offset + 4])
        except (IndexError, ValueError, UnicodeDecodeError, struct.error):
            return struct.pack("!HHHHHH", ident, 0x8400 | rd | 1, 0, 0, 0, 0)
        question = query[12 : offset + 4]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype, transport))
        if name not in self.names or qclass != 1:
            # QR=1, AA=1, RCODE=5 (REFUSED), the question echoed back
            return struct.pack("!HHHHHH", ident, 0x8400 | rd | 5, 1, 0, 0, 0) + question
        if qtype != 1:  # NODATA: the name exists, no record of this type
            return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 0, 0, 0) + question
        # One answer: a pointer to the QNAME at offset 12 (0xC00C), TYPE A, CLASS IN,
        # TTL 0 (nothing caches a test's answers), RDLENGTH 4, 127.0.0.1.
        record = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton("127.0.0.1")
        return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 1, 0, 0) + question + record


def _read_exactly(conn: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# ------------------------------------------------------------------------------ Pebble


@dataclass
class Pebble:
    """A running Pebble: where it listens, what to trust, what it issues from."""

    directory: str  #: the ACME directory URL (https://127.0.0.1:PORT/dir)
    management: str  #: the management interface (https://127.0.0.1:PORT)
    ca_bundle: Path  #: the CA of Pebble's HTTPS certificate (made here with helpers.pki)
    http_port: int  #: where Pebble fetches HTTP-01 challenges
    version: str  #: the Debian package version, for messages
    log_path: Path
    process: subprocess.Popen[bytes]
    dns: DnsResponder
    _cache: dict[str, list[x509.Certificate]] = field(default_factory=dict)

    def _get_certs(self, path: str) -> list[x509.Certificate]:
        if path not in self._cache:
            resp = requests.get(
                self.management + path,
                verify=str(self.ca_bundle),
                timeout=10,
                proxies={"https": None, "http": None},
            )
            resp.raise_for_status()
            self._cache[path] = x509.load_pem_x509_certificates(resp.content)
        return self._cache[path]

    @property
    def roots(self) -> list[x509.Certificate]:
        """The root Pebble issues under, from its management interface (``/roots/0``)."""
        return self._get_certs("/roots/0")

    @property
    def intermediates(self) -> list[x509.Certificate]:
        """The intermediate that signs leaves (``/intermediates/0``)."""
        return self._get_certs("/intermediates/0")

    def directory_document(self) -> dict:
        resp = requests.get(
            self.directory,
            verify=str(self.ca_bundle),
            timeout=10,
            proxies={"https": None, "http": None},
        )
        resp.raise_for_status()
        return resp.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _https_identity(folder: Path) -> tuple[Path, Path, Path]:
    """Pebble's HTTPS chain and key, from a fresh CA; and that CA's root (what to trust)."""
    ca = pki.CA("Pebble test HTTPS CA (tests/pebble.py)")
    leaf = ca.issue("localhost", "127.0.0.1")
    files = leaf.write(folder, "pebble-https")
    root = folder / "pebble-https-ca.pem"
    root.write_bytes(ca.cert_pem)
    return files.chain, files.key, root


def _wait_until_up(
    process: subprocess.Popen[bytes], directory: str, ca: Path, log: Path, timeout: float
) -> str | None:
    """None once the directory answers; else why not ("address already in use", ...)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"pebble exited with status {process.returncode}: {log.read_text()[-600:]}"
        with contextlib.suppress(requests.RequestException):
            resp = requests.get(
                directory, verify=str(ca), timeout=2, proxies={"https": None, "http": None}
            )
            if resp.status_code == 200:
                return None
        time.sleep(0.1)
    return f"pebble did not answer within {timeout:g} s: {log.read_text()[-600:]}"


@contextlib.contextmanager
def running_pebble(
    folder: Path,
    *,
    http_port: int,
    names: Iterable[str],
    env: dict[str, str] | None = None,
    attempts: int = 5,
    dns_server: bool = True,
) -> Iterator[Pebble]:
    """Pebble on 127.0.0.1, validating HTTP-01 on ``http_port``, resolving ``names`` to
    127.0.0.1 through a :class:`DnsResponder`; stopped (by its PID) at the end."""
    binary = pebble_binary()
    if binary is None:
        raise RuntimeError(SKIP_REASON)
    folder.mkdir(parents=True, exist_ok=True)
    chain, key, ca = _https_identity(folder)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    environment["PEBBLE_VA_NOSLEEP"] = "1"
    environment.update(env or {})
    assert "PEBBLE_VA_ALWAYS_VALID" not in environment, "HTTP-01 must be validated for real"
    with DnsResponder(names) as dns:
        why = "no attempt made"
        for attempt in range(attempts):
            acme_port, management_port, tls_port = free_port(), free_port(), free_port()
            config = {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme_port}",
                    "managementListenAddress": f"127.0.0.1:{management_port}",
                    "certificate": str(chain),
                    "privateKey": str(key),
                    "httpPort": http_port,
                    "tlsPort": tls_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
            config_path = folder / f"pebble-config-{attempt}.json"
            config_path.write_text(json.dumps(config, indent=2))
            log_path = folder / f"pebble-{attempt}.log"
            directory = f"https://127.0.0.1:{acme_port}/dir"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [binary, "-config", str(config_path)]
                    + (["-dnsserver", dns.address] if dns_server else []),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=environment,
                    cwd=folder,
                )
            why = _wait_until_up(process, directory, ca, log_path, timeout=15)
            if why is None:
                break
            _stop(process)
            if "address already in use" not in why:
                raise RuntimeError(why)
        else:
            raise RuntimeError(f"pebble did not start in {attempts} attempts: {why}")
        try:
            yield Pebble(
                directory=directory,
                management=f"https://127.0.0.1:{management_port}",
                ca_bundle=ca,
                http_port=http_port,
                version=pebble_version(),
                log_path=log_path,
                process=process,
                dns=dns,
            )
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the Pebble we started (by its PID: Popen.terminate, then kill)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
