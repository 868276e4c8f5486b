"""Checks for the exercises of notebook 05 · Wrapping sockets with ``ssl``.

Every check makes real TLS connections on loopback: to the lab's servers
(:func:`helpers.lab.get_lab`) and, where the lab has no such server, to an in-memory
server built here (:func:`helpers.capture.capture_memory`). Each one first calls the
learner's function once against a closed port, so an unfinished answer costs nothing.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import exercise

# What each lab server negotiates with a default client (Python 3.11, OpenSSL 3.0);
# the check asks the server itself, so other versions of either are fine too.
_NEGOTIATES = ("valid", "tls-1.2-only")


def _closed_address() -> tuple[str, int]:
    """An address on loopback where nothing listens (connecting is refused at once)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[:2]


def _probe(answer: Callable[..., Any], *args: Any) -> None:
    """Call the answer once, cheaply: NotImplementedError means "not attempted yet"."""
    try:
        answer(*args)
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001, S110 - a correct answer fails here (nothing listens)
        pass


def _reference(lab: Any, scenario: str) -> tuple[str, str]:
    """What a verifying default client negotiates with a lab server."""
    ctx = ssl.create_default_context(cafile=str(lab.ca_bundle))
    with (
        socket.create_connection(lab.address(scenario), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=lab.host(scenario)) as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return str(tls.version()), cipher[0]


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a whole HTTP response would flood the cell."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _raises(
    call: Callable[[], Any], kind: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    try:
        call()
    except kind as exc:
        return exc
    return None


@exercise(
    "nb05",
    params=("address", "server_hostname", "cafile"),
    hints=[
        "ctx = ssl.create_default_context(cafile=cafile) gives verification and host name checks.",
        "Open the TCP connection with socket.create_connection(address, timeout=5), then "
        "ctx.wrap_socket(sock, server_hostname=server_hostname): use both in `with` blocks.",
        "tls.version() is the version; tls.cipher() is a tuple (name, protocol, bits): return its [0].",
    ],
)
def version_and_cipher(answer):
    _probe(answer, _closed_address(), "localhost", None)
    from ..lab import get_lab

    lab = get_lab()
    cafile = str(lab.ca_bundle)
    for scenario in _NEGOTIATES:
        want = _reference(lab, scenario)
        got = answer(lab.address(scenario), lab.host(scenario), cafile)
        assert isinstance(got, tuple) and len(got) == 2, (
            f"return a tuple (version, cipher name), not {got!r}"
        )
        assert got == want, f"the lab's {scenario!r} server negotiated {want}, you returned {got}"
    for scenario in ("expired", "wrong-host"):
        host = lab.host(scenario)
        error = _raises(
            lambda s=scenario, h=host: answer(lab.address(s), h, cafile),
            ssl.SSLCertVerificationError,
        )
        assert error is not None, (
            f"the {scenario!r} server's certificate must be refused with "
            "ssl.SSLCertVerificationError: is verification on, and did you pass server_hostname?"
        )


# The ffdhe2048 group of RFC 7919 (Appendix A.1), as `openssl genpkey -genparam -algorithm DH
# -pkeyopt group:ffdhe2048` prints it. A TLS 1.2 server needs DH parameters before it can
# offer a DHE suite; a well-known group avoids generating one (which takes seconds).
_FFDHE2048_PEM = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


def _hardened_server(leaf: Any, ciphers: str, dh_params: Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2-only server with ``leaf``'s certificate and one cipher string."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    if dh_params is not None:
        ctx.load_dh_params(str(dh_params))  # without parameters a server cannot offer DHE
    leaf.configure_server(ctx)
    return ctx


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> str | None:
    """An in-memory handshake: the negotiated cipher, or None if it failed."""
    from ..capture import capture_memory

    try:
        capture = capture_memory(client, server, hostname, keylog=False)
    except ssl.SSLError:
        return None
    cipher = capture.info.get("cipher")
    return cipher[0] if cipher else None


def _connects(ctx: ssl.SSLContext, lab: Any, scenario: str) -> bool:
    try:
        with (
            socket.create_connection(lab.address(scenario), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=lab.host(scenario)),
        ):
            return True
    except ssl.SSLError:
        return False


@exercise(
    "nb05",
    params=("cafile",),
    hints=[
        "Start from ssl.create_default_context(cafile=cafile): verification and host name "
        "checks are already there.",
        "Set the minimum yourself: ctx.minimum_version = ssl.TLSVersion.TLSv1_2. Most Python "
        "builds already default to it, but Debian's and Ubuntu's leave MINIMUM_SUPPORTED.",
        "ctx.set_ciphers(...) takes an OpenSSL cipher string. 'AESGCM' names only the cipher: "
        "it also keeps plain-RSA and DHE key exchange. 'ECDHE+AESGCM:ECDHE+CHACHA20' keeps "
        "exactly the ECDHE suites with AES-GCM or ChaCha20-Poly1305. Check with ctx.get_ciphers().",
    ],
)
def hardened_context(answer):
    _probe(answer, None)
    from ..lab import get_lab

    lab = get_lab()
    ctx = answer(str(lab.ca_bundle))
    assert isinstance(ctx, ssl.SSLContext), f"return an ssl.SSLContext, not {type(ctx).__name__}"
    assert ctx.verify_mode == ssl.CERT_REQUIRED, "verify_mode must be ssl.CERT_REQUIRED"
    assert ctx.check_hostname, "check_hostname must be on"
    assert _connects(ctx, lab, "valid"), (
        "a handshake with the lab's 'valid' server failed: does the context trust cafile?"
    )
    assert _connects(ctx, lab, "tls-1.2-only"), (
        "the lab's 'tls-1.2-only' server was refused: TLS 1.2 must stay allowed"
    )
    for scenario in ("tls-1.0-only", "tls-1.1-only", "expired", "wrong-host"):
        assert not _connects(ctx, lab, scenario), (
            f"your context accepted the lab's {scenario!r} server; it must refuse it"
        )
    # The cipher checks use a CA of the checker's own (so they also work when the lab is a
    # teacher's, whose keys stay on the teacher's machine): build a second context from it.
    from ..pki import CA

    own = CA(common_name="nb05 checker CA")
    hostname = "hardened.test"
    leaf = own.issue(hostname)  # EC P-256: for the ECDHE-ECDSA suites
    rsa_leaf = own.issue(hostname, key_type="rsa")  # plain-RSA and DHE-RSA suites need an RSA key
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "ca.pem"
        bundle.write_bytes(own.cert_pem)
        dh_params = Path(tmp) / "ffdhe2048.pem"
        dh_params.write_text(_FFDHE2048_PEM)
        ctx = answer(str(bundle))
        cbc = _handshake(ctx, _hardened_server(leaf, "ECDHE-ECDSA-AES128-SHA256"), hostname)
        assert cbc is None, (
            f"your context agreed to {cbc} (AES in CBC mode) with a TLS 1.2 server; allow only "
            "ECDHE with AES-GCM or ChaCha20-Poly1305"
        )
        static_rsa = _handshake(ctx, _hardened_server(rsa_leaf, "AES128-GCM-SHA256"), hostname)
        assert static_rsa is None, (
            f"your context agreed to {static_rsa} with a TLS 1.2 server that offered only that "
            "suite. Its key exchange is plain RSA: the client encrypts the session's secret to "
            "the server's certificate key, so whoever obtains that key later can decrypt every "
            "recorded session (no forward secrecy). 'AESGCM' names the cipher, not the key "
            "exchange: ask for ECDHE explicitly ('ECDHE+AESGCM:ECDHE+CHACHA20')."
        )
        dhe = _handshake(
            ctx, _hardened_server(rsa_leaf, "DHE-RSA-AES128-GCM-SHA256", dh_params), hostname
        )
        assert dhe is None, (
            f"your context agreed to {dhe}. Finite-field DHE is forward-secret, but in TLS 1.2 "
            "the server alone picks the group (weak 1024-bit groups made Logjam possible, 2015) "
            "and it is much slower than ECDHE; browsers dropped these suites. Allow ECDHE only."
        )
        chacha = _handshake(ctx, _hardened_server(leaf, "ECDHE-ECDSA-CHACHA20-POLY1305"), hostname)
        assert chacha == "ECDHE-ECDSA-CHACHA20-POLY1305", (
            "a TLS 1.2 server offering ECDHE-ECDSA-CHACHA20-POLY1305 was refused; that suite is fine"
        )


def _request(host: str) -> bytes:
    """Two pipelined HTTP requests: the server answers each in its own TLS record, then closes.

    One ``recv()`` returns at most one record, so only a loop that reads until ``b''``
    gets both answers.
    """
    return (
        f"GET /scenario.json HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    ).encode()


@exercise(
    "nb05",
    params=("address", "server_hostname", "cafile", "certfile", "keyfile", "request"),
    hints=[
        "It is version_and_cipher plus one line: ctx.load_cert_chain(certfile, keyfile) on the "
        "client's context, before wrap_socket.",
        "Send with tls.sendall(request); then call tls.recv(65536) in a loop and stop when it "
        "returns b'' (the server closed the connection).",
        "In TLS 1.3 a refused client certificate shows up after the handshake, on the first "
        "recv() (or as a ConnectionResetError when the server's TCP reset overtakes its alert): "
        "let it propagate, don't catch it.",
    ],
)
def mtls_request(answer):
    _probe(answer, _closed_address(), "localhost", None, None, None, b"")
    from ..lab import get_lab
    from ..pki import CA

    lab = get_lab()
    scenario = "client-cert-required"
    address, host, cafile = lab.address(scenario), lab.host(scenario), str(lab.ca_bundle)
    certfile, keyfile = (str(p) for p in lab.client_cert)
    response = answer(address, host, cafile, certfile, keyfile, _request(host))
    assert isinstance(response, bytes), f"return the bytes the server sent, not {_short(response)}"
    assert response.startswith(b"HTTP/1.1 200"), (
        f"expected an HTTP 200 response, got {response[:60]!r}"
    )
    assert response.count(b"HTTP/1.1 200 OK") == 2, (
        "the server sent two responses but you returned only the first: keep calling recv() "
        "until it returns b'' (one recv() returns at most one TLS record)"
    )
    assert b"your client certificate" in response, "the server did not see a client certificate"

    stranger = CA(common_name="Checker's Untrusted CA").issue(
        "stranger.clients.localhost", common_name="stranger", usages=("client",)
    )
    with tempfile.TemporaryDirectory(prefix="tls-course-nb05-") as tmp:
        files = stranger.write(tmp, "stranger")  # key written 0600, deleted with the directory
        # Under TLS 1.3 the refusal comes after the client's handshake is complete (RFC 8446
        # §4.4.2.4): usually as an alert (ssl.SSLError), but if the server's TCP reset overtakes
        # it, as the reset itself: ssl.SSLEOFError up to Python 3.12, ConnectionResetError
        # (or BrokenPipeError) from 3.13. All of them are a correct answer's behaviour.
        refused = _raises(
            lambda: answer(address, host, cafile, str(files.chain), str(files.key), _request(host)),
            (ssl.SSLError, ConnectionError),
        )
    assert refused is not None, (
        "with a certificate from a CA the server does not trust, your function returned instead "
        "of raising ssl.SSLError: does it present certfile/keyfile, and not catch the error?"
    )
    wrong_name = _raises(
        lambda: answer(address, lab.host("valid"), cafile, certfile, keyfile, _request(host)),
        ssl.SSLError,
    )
    assert wrong_name is not None, (
        "connecting with the wrong server_hostname must fail: keep certificate and host name checks on"
    )
