"""Checks for the exercises of notebook 07 · Man in the middle."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import selectors
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import exercise

BANK = "bank.lab.localhost"


def _reference_pin(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _openssl_pin(cert: x509.Certificate) -> str | None:
    """The pin as RFC 7469 readers compute it with the openssl command line, if installed."""
    if shutil.which("openssl") is None:
        return None
    data = cert.public_bytes(serialization.Encoding.PEM)
    # openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary
    for step in (
        ["openssl", "x509", "-pubkey", "-noout"],
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        ["openssl", "dgst", "-sha256", "-binary"],
    ):
        out = subprocess.run(step, input=data, capture_output=True, timeout=10)
        if out.returncode != 0:
            return None
        data = out.stdout
    return base64.b64encode(data).decode("ascii")  # ... | base64


def _explain_wrong_pin(got: object, cert: x509.Certificate) -> str:
    digest = hashlib.sha256
    whole = cert.public_bytes(serialization.Encoding.DER)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if got == base64.b64encode(digest(whole).digest()).decode():
        return (
            "that is the hash of the whole certificate; a pin hashes only its SubjectPublicKeyInfo"
        )
    if got == digest(spki).hexdigest():
        return "right hash, wrong text form: RFC 7469 pins are base64, not hex"
    if isinstance(got, bytes):
        return "return text (str): decode the base64 bytes with .decode('ascii')"
    with contextlib.suppress(ValueError, TypeError):  # EC keys: the bare point, no algorithm
        point = cert.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        if got == base64.b64encode(digest(point).digest()).decode():
            return (
                "that hashes the bare public key; a pin hashes the whole DER "
                "SubjectPublicKeyInfo, algorithm identifier included"
            )
    if got == base64.b64encode(hashlib.sha1(spki, usedforsecurity=False).digest()).decode():
        return "that is SHA-1; RFC 7469 pins (pin-sha256) use SHA-256"
    return "expected base64(SHA-256(DER SubjectPublicKeyInfo)), RFC 7469 §2.4"


@exercise(
    "nb07",
    hints=[
        "cert.public_key() gives the key; .public_bytes(...) turns it into bytes.",
        "Use serialization.Encoding.DER and serialization.PublicFormat.SubjectPublicKeyInfo "
        "(from cryptography.hazmat.primitives import serialization).",
        "Then hashlib.sha256(der).digest(), and base64.b64encode(...).decode('ascii').",
    ],
)
def spki_pin(answer):
    from .. import pki

    leaf = pki.self_signed("pin.lab.localhost")
    got = answer(leaf.cert)
    assert got is not None, "your function returned None: did you forget the `return`?"
    want = _reference_pin(leaf.cert)
    assert got == want, (
        f"for a P-256 certificate you returned {got!r}: {_explain_wrong_pin(got, leaf.cert)}"
    )
    from ..lab import get_lab

    lab = get_lab()
    for scenario in ("valid", "weak-key", "dh-1024"):
        cert = pki.load_certificate(lab.files.chains[scenario])
        want = _openssl_pin(cert) or _reference_pin(cert)
        got = answer(cert)
        assert got == want, (
            f"for the lab's {scenario!r} certificate ({type(cert.public_key()).__name__[:3]} key) "
            f"you returned {got!r}, openssl says {want!r}"
        )
    renewed = pki.CA("Another CA").issue("pin.lab.localhost", key=leaf.key)
    assert answer(renewed.cert) == answer(leaf.cert), (
        "two certificates for the same key must have the same pin (that is why HPKP pins keys)"
    )


@contextlib.contextmanager
def _bank_world() -> Iterator[dict[str, object]]:
    """A bank (LoginServer over HTTPS), its pin, trust files, and attackers' certificates."""
    from .. import names, pki
    from ..servers import LoginServer

    public = pki.CA("Exercise Public CA")
    corporate = pki.CA("Exercise Corporate CA")
    bank_leaf = public.issue(BANK)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    bank_leaf.configure_server(ctx)
    with (
        tempfile.TemporaryDirectory(prefix="nb07-check-") as tmp,
        names.resolving({BANK: "127.0.0.1"}),
        LoginServer(tls=ctx) as bank,
    ):
        cafile = Path(tmp, "trust.pem")
        cafile.write_bytes(public.cert_pem + corporate.cert_pem)
        yield {
            "bank": bank,
            "url": f"https://{BANK}:{bank.port}/",
            "pin": _reference_pin(bank_leaf.cert),
            "cafile": str(cafile),
            "forged": corporate.issue(BANK),
            "self_signed": pki.self_signed(BANK),
        }


def _refuses(answer: object, *args: object) -> bool:
    """True if the learner's function raised (any exception but NotImplementedError)."""
    try:
        answer(*args)  # type: ignore[operator]
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - any exception is a refusal
        return True
    return False


class _SwitchingAttacker:
    """The time-of-check/time-of-use attacker: first connection real, later ones intercepted.

    It listens on 127.0.0.1 and relays bytes at the TCP level: the victim's **first**
    connection goes to the real bank untouched (so a pin checked on it matches), every
    later one to ``interceptor`` (a TLS-terminating man in the middle with a certificate
    the victim trusts). A client that checks the pin on one connection and sends its
    request on another sends that request to the attacker.
    """

    def __init__(self, bank: tuple[str, int], interceptor: tuple[str, int]) -> None:
        self.targets = (bank, interceptor)
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> _SwitchingAttacker:
        thread = threading.Thread(target=self._accept_loop, daemon=True, name="nb07-toctou")
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                victim, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            target = self.targets[0 if self.accepted == 0 else 1]
            self.accepted += 1
            thread = threading.Thread(target=self._relay, args=(victim, target), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _relay(self, victim: socket.socket, target: tuple[str, int]) -> None:
        with victim, socket.create_connection(target, timeout=5) as upstream:
            peers = {victim: upstream, upstream: victim}
            with selectors.DefaultSelector() as sel:
                for sock in peers:
                    sel.register(sock, selectors.EVENT_READ)
                while not self._stop.is_set():
                    for key, _ in sel.select(timeout=0.1):
                        try:
                            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                            if not data:
                                return
                            peers[key.fileobj].sendall(data)  # type: ignore[index]
                        except OSError:
                            return


@exercise(
    "nb07",
    hints=[
        "Split the URL with urllib.parse.urlsplit: .hostname and .port.",
        "http.client.HTTPSConnection(host, port, context=ssl.create_default_context(cafile=cafile)) "
        "keeps verification on; call conn.connect() to do the handshake before any request.",
        "After connect(), conn.sock.getpeercert(binary_form=True) is the server's certificate in "
        "DER: compute its pin and compare it with `pin` BEFORE conn.request(...). On a mismatch, "
        "close the connection and raise (ValueError is fine).",
        "Finally conn.request('GET', path or '/'), then conn.getresponse().read().decode().",
    ],
)
def pinned_get(answer):
    from ..mitm import Interceptor

    with _bank_world() as w:
        url, pin, cafile = str(w["url"]), str(w["pin"]), str(w["cafile"])
        body = answer(url, pin, cafile)
        assert body is not None, "your function returned None: return the page as text (str)"
        assert isinstance(body, str), f"return the page as text (str), not {type(body).__name__}"
        assert "Tiny Bank" in body, "with the right pin you should get the bank's page back"
        wrong = base64.b64encode(b"\x00" * 32).decode()
        assert _refuses(answer, url, wrong, cafile), (
            "with a pin that does not match, your function still returned"
        )
        bank = w["bank"]
        for attacker, what in (
            (w["forged"], "a certificate from a CA you trust"),
            (w["self_signed"], "a self-signed certificate"),
        ):
            with Interceptor(bank.address, attacker, upstream_cafile=cafile) as mitm:  # type: ignore[attr-defined,arg-type]
                mitm_url = f"https://{BANK}:{mitm.port}/"
                assert _refuses(answer, mitm_url, pin, cafile), (
                    f"an attacker with {what} got through: your function returned a page"
                )
                with contextlib.suppress(TimeoutError):
                    mitm.wait(1, timeout=2)
                sent = sum(len(i.data("c2s")) for i in mitm.interceptions)
                assert sent == 0, (
                    f"against an attacker with {what} your function sent {sent} bytes before "
                    "refusing: check the pin right after the handshake, before the request"
                )
        # Pinning adds to verification; it never replaces it.
        attacker_pin = _reference_pin(w["self_signed"].cert)  # type: ignore[attr-defined]
        with Interceptor(bank.address, w["self_signed"], upstream_cafile=cafile) as mitm:  # type: ignore[attr-defined,arg-type]
            assert _refuses(answer, f"https://{BANK}:{mitm.port}/", attacker_pin, cafile), (
                "given the self-signed attacker's own pin, your function accepted it: keep "
                "certificate verification on (cafile=...) and check the pin on top"
            )
        # Time of check, time of use: the pin must be checked on the connection that
        # carries the request. This attacker lets connection #1 through to the real bank
        # and intercepts connection #2 with a certificate the client trusts.
        with (
            Interceptor(bank.address, w["forged"], upstream_cafile=cafile) as mitm,  # type: ignore[attr-defined,arg-type]
            _SwitchingAttacker(bank.address, mitm.address) as switch,  # type: ignore[attr-defined]
        ):
            # Refusing here is fine (a careful client may refuse); what counts is what leaked.
            _refuses(answer, f"https://{BANK}:{switch.port}/", pin, cafile)
            if mitm.interceptions:
                with contextlib.suppress(TimeoutError):
                    mitm.wait(len(mitm.interceptions), timeout=2)
            sent = sum(len(i.data("c2s")) for i in mitm.interceptions)
            assert sent == 0, (
                f"your function checked the pin on one connection and sent the request over "
                f"another ({switch.accepted} connections): an attacker let the first through "
                f"to the real bank and intercepted the second, and read {sent} bytes of your "
                "request. That is a time-of-check/time-of-use hole: check the pin on the very "
                "connection (conn.sock) that then carries the request"
            )
