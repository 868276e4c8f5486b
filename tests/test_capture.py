"""helpers.capture: in-memory captures and the recording relay, over real loopback sockets.

Every connection here is real TLS: SSLObjects over MemoryBIOs, or SSLSockets / requests /
openssl s_client talking through a Relay to a small threaded TLS server on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from helpers import diagnose, tls13
from helpers.capture import (
    DEFAULT_REQUEST,
    DEFAULT_RESPONSE,
    Capture,
    Chunk,
    Relay,
    capture_memory,
    flip_record_byte,
)
from helpers.errors import ParseError, UsageError
from helpers.pki import CA

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"


@pytest.fixture(scope="module")
def pki() -> dict:
    root = CA(common_name="Capture Test Root")
    return {"root": root, "leaf": root.issue("localhost", "127.0.0.1")}


def server_context(pki: dict, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki["leaf"].configure_server(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    if version is not None:
        ctx.maximum_version = version
    return ctx


def client_context(pki: dict, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki["root"].configure_trust(ctx)
    if version is not None:
        ctx.maximum_version = version
    return ctx


class Server:
    """A tiny TLS (or plain TCP) server: one thread per connection, reads a request head,
    answers RESPONSE, closes. Errors are collected, not raised."""

    def __init__(self, ctx: ssl.SSLContext | None) -> None:
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.errors: list[BaseException] = []
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop)
        self._accepter.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,))
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = self.ctx.wrap_socket(conn, server_side=True) if self.ctx else conn
            with sock:
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = sock.recv(4096)
                    if not piece:
                        break
                    data += piece
                self.received.append(data)
                if data:
                    sock.sendall(RESPONSE)
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._accepter.join(5)
        self.listener.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def tls_server(pki: dict) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(version: ssl.TLSVersion | None = None, plain: bool = False) -> Server:
        server = Server(None if plain else server_context(pki, version))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def tls_get(relay: Relay, ctx: ssl.SSLContext) -> tuple[float, bytes]:
    """Connect through the relay, handshake, send a request; return (handshake seconds, reply)."""
    with socket.create_connection(relay.address, timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            elapsed = time.perf_counter() - start
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = b""
            while piece := tls.recv(4096):
                reply += piece
    return elapsed, reply


# --- capture_memory ----------------------------------------------------------------------


def test_capture_memory_keeps_what_the_endpoints_saw(pki: dict) -> None:
    client = client_context(pki)
    client.set_alpn_protocols(["http/1.1"])
    capture = capture_memory(client, server_context(pki))
    info = capture.info
    assert info["version"] == "TLSv1.3" == capture.version
    assert info["cipher"][0] == capture.cipher_suite
    assert info["alpn"] == "http/1.1"
    assert info["server_certificate"] == pki["leaf"].cert.public_bytes(ssl_der())
    assert info["request_received"] == DEFAULT_REQUEST
    assert info["response_received"] == DEFAULT_RESPONSE
    assert info["session_reused"] is False
    # Chunks alternate with the flights and time never runs backwards.
    assert [c.direction for c in capture.chunks[:3]] == ["c2s", "s2c", "c2s"]
    assert all(a.t <= b.t for a, b in zip(capture.chunks, capture.chunks[1:], strict=False))
    # The key log belongs to this very handshake, and the context is left as it was.
    hello = capture.client_hello
    assert hello is not None
    assert f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {hello.random.hex()} " in info["keylog"]
    assert client.keylog_filename is None
    # Both sides said close_notify: the last record each way is an (encrypted) alert.
    assert {e.direction for e in capture.events()[-2:]} == {"c2s", "s2c"}


def ssl_der():  # cryptography's Encoding.DER, imported lazily to keep the header short
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_failed_handshake_raises_with_the_capture_attached(pki: dict) -> None:
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts nothing
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        capture_memory(untrusting, server_context(pki))
    capture = info.value.capture  # type: ignore[attr-defined]
    assert isinstance(capture, Capture)
    assert capture.events()[0].label == "ClientHello"
    assert "unknown ca" in capture.info["server_error"].lower()


def test_resumption_shortens_the_server_flight(pki: dict) -> None:
    client, server = client_context(pki), server_context(pki)
    first = capture_memory(client, server)
    second = capture_memory(client, server, session=first.info["session"])
    assert second.info["session_reused"] is True
    assert (
        second.client_hello is not None and "pre_shared_key" in second.client_hello.extension_names
    )
    assert (
        second.server_hello is not None and "pre_shared_key" in second.server_hello.extension_names
    )
    flight = [
        e.label
        for e in second.events()
        if e.direction == "s2c" and e.encrypted and "application" not in e.label
    ]
    assert flight == ["EncryptedExtensions (encrypted)", "Finished (encrypted)"]  # no Certificate


def test_to_dict_from_dict_and_files(pki: dict, tmp_path: Path) -> None:
    capture = capture_memory(client_context(pki), server_context(pki), label="saved")
    text = json.dumps(capture.to_dict())  # JSON-friendly: no bytes, no SSLSession
    again = Capture.from_dict(json.loads(text))
    assert again.label == "saved"
    assert again.client_bytes == capture.client_bytes and again.server_bytes == capture.server_bytes
    assert [(e.label, e.t) for e in again.events()] == [(e.label, e.t) for e in capture.events()]
    assert again.info["server_certificate"] == capture.info["server_certificate"]
    assert "session" not in again.info
    path = capture.save(tmp_path / "capture.json")
    assert Capture.load(path).server_bytes == capture.server_bytes


# --- saving: secrets stay out, malformed files are refused (audit L7, L8.3) ------------------


def _secret_lines(text: str) -> list[str]:
    """Key-log lines and PEM private keys in a text, however JSON escaped the newlines."""
    keylog = re.findall(
        r"(?:CLIENT_RANDOM|[A-Z_]*_SECRET(?:_\d)?) [0-9a-f]{64} [0-9a-f]{32,}", text
    )
    pem = re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text)
    return keylog + pem


def test_save_leaves_the_key_log_and_other_secrets_out_unless_asked(
    pki: dict, tmp_path: Path
) -> None:
    capture = capture_memory(client_context(pki), server_context(pki), label="secret")
    keylog = capture.info["keylog"]  # in memory it is there, for helpers.tls13
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in keylog
    key_pem = pki["leaf"].key_pem().decode()
    capture.info["notes"] = {"debug": [keylog], "server key": key_pem}  # hidden deeper
    capture.info["Private_Key"] = "anything under a secret's name"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the safe default says nothing
        path = capture.save(tmp_path / "capture.json")
        as_dict = capture.to_dict()
    text = path.read_text()
    assert _secret_lines(text) == [] and _secret_lines(json.dumps(as_dict)) == []
    assert "anything under a secret's name" not in text
    assert sorted(as_dict["withheld"]) == [
        "info.Private_Key",
        "info.keylog",
        "info.notes.debug[0]",
        "info.notes.server key",
    ]
    again = Capture.load(path)
    assert "keylog" not in again.info and again.info["notes"] == {"debug": []}
    assert again.server_bytes == capture.server_bytes  # the recording itself is all there
    assert again.info["server_certificate"] == capture.info["server_certificate"]
    assert capture.info["keylog"] == keylog  # saving did not touch the capture in memory

    # Asked for: written, with a warning that says why it matters, in a file only we can read.
    with pytest.warns(UserWarning, match=r"decrypt") as warned:
        secret_path = capture.save(tmp_path / "with-keys.json", include_keylog=True)
    assert len(warned) == 1 and warned[0].filename == __file__  # points at the caller's line
    assert secret_path.stat().st_mode & 0o777 == 0o600
    kept = Capture.load(secret_path)
    assert kept.info["keylog"] == keylog and "withheld" not in json.loads(secret_path.read_text())
    result = tls13.decrypt_capture(kept, kept.info["keylog"])  # it really is the key log
    assert result.application_data.server == DEFAULT_RESPONSE
    with pytest.warns(UserWarning, match=r"decrypt"):
        assert capture.to_dict(include_keylog=True)["info"]["keylog"] == keylog


def test_a_capture_without_secrets_saves_without_warning(pki: dict, tmp_path: Path) -> None:
    capture = capture_memory(client_context(pki), server_context(pki), keylog=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saved = json.loads(capture.save(tmp_path / "c.json", include_keylog=True).read_text())
    assert "withheld" not in saved and "keylog" not in saved["info"]


def test_the_saved_post_quantum_captures_still_load() -> None:
    saved = json.loads((Path(__file__).parent.parent / "data" / "pq_handshake.json").read_text())
    for name in ("hybrid", "x25519"):
        capture = Capture.from_dict(saved["captures"][name])
        assert capture.version == "TLSv1.3" and capture.server_hello is not None


def _deep(levels: int) -> dict:
    info: dict = {}
    inner = info
    for _ in range(levels):
        inner["a"] = {}
        inner = inner["a"]
    return {"format": "tls-course-capture/1", "chunks": [], "info": info}


_OK_CHUNK = {"direction": "c2s", "t": 0.0, "data": "16"}
_MALFORMED: dict[str, tuple[bytes, str]] = {
    "list": (b"[]", r"JSON array"),
    "chunks-int": (b'{"format": "tls-course-capture/1", "chunks": 5}', r"chunks"),
    "chunks-missing": (b'{"format": "tls-course-capture/1"}', r"chunks"),
    "chunk-not-object": (b'{"format": "tls-course-capture/1", "chunks": [7]}', r"chunk 0"),
    "chunk-key-missing": (
        b'{"format": "tls-course-capture/1", "chunks": [{"direction": "c2s", "t": 0}]}',
        r"chunk 0",
    ),
    "non-hex": (
        b'{"format": "tls-course-capture/1", "chunks": [{"direction": "c2s", "t": 0, "data": "zz"}]}',
        r"hex",
    ),
    "bad-direction": (
        b'{"format": "tls-course-capture/1", "chunks": [{"direction": "up", "t": 0, "data": ""}]}',
        r"direction",
    ),
    "bad-time": (
        b'{"format": "tls-course-capture/1", "chunks": [{"direction": "c2s", "t": "0", "data": ""}]}',
        r"time",
    ),
    "bad-label": (b'{"format": "tls-course-capture/1", "chunks": [], "label": 5}', r"label"),
    "bad-info": (b'{"format": "tls-course-capture/1", "chunks": [], "info": []}', r"info"),
    "bad-bytes": (
        b'{"format": "tls-course-capture/1", "chunks": [], "info": {"x": {"$bytes": "xyz"}}}',
        r"hex",
    ),
    "900-deep": (json.dumps(_deep(900)).encode(), r"nested"),
    "900-deep-list": (
        b'{"format": "tls-course-capture/1", "chunks": [], "info": {"a": '
        + b"[" * 900
        + b"]" * 900
        + b"}}",
        r"nested",
    ),
    "non-utf8": (b'{"format": "tls-course-capture/1", "chunks": [], "label": "\xff"}', r"UTF-8"),
    "not-json": (b"CLIENT_RANDOM is not JSON", r"JSON"),
    "empty": (b"", r"JSON"),
    "format-missing": (json.dumps({"chunks": [_OK_CHUNK]}).encode(), r"format"),
    "format-wrong": (
        json.dumps({"format": "pcap", "chunks": [_OK_CHUNK]}).encode(),
        r"format",
    ),
}


@pytest.mark.parametrize("content,match", _MALFORMED.values(), ids=_MALFORMED.keys())
def test_load_refuses_a_malformed_file_in_one_sentence(
    tmp_path: Path, content: bytes, match: str
) -> None:
    path = tmp_path / "capture.json"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=match) as refused:
        Capture.load(path)
    message = str(refused.value)
    assert "\n" not in message and len(message) < 300, message
    assert "capture.json" in message  # says which file
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return  # not JSON at all: only load() can see it
    with pytest.raises(ParseError, match=match):
        Capture.from_dict(data)


def test_load_of_a_missing_path_or_a_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no file") as missing:
        Capture.load(tmp_path / "nowhere.json")
    assert "nowhere.json" in str(missing.value)
    with pytest.raises(UsageError, match=r"directory"):
        Capture.load(tmp_path)


def test_saving_to_a_missing_folder_or_an_endless_info_says_so(tmp_path: Path) -> None:
    capture = Capture([Chunk("c2s", b"\x16\x03\x01", 0.0)])
    with pytest.raises(UsageError, match=r"folder exists"):
        capture.save(tmp_path / "no-such-folder" / "c.json")
    deep: dict = {}
    inner = deep
    for _ in range(200):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(UsageError, match=r"nested more than"):
        Capture(info=deep).to_dict()


def test_a_chunk_in_a_wrong_direction_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="c2s"):
        Chunk("up", b"", 0.0)  # type: ignore[arg-type]


def test_capture_html_and_non_tls_bytes() -> None:
    plain = Capture([Chunk("c2s", b"POST /login HTTP/1.1\r\n\r\nuser=ada&password=hunter2", 0.0)])
    with pytest.raises(ParseError, match="plain HTTP"):
        plain.events()
    assert plain.events(strict=False) == []
    page = plain._repr_html_()
    assert "password=hunter2" in page and "<table" in page
    with pytest.raises(ValueError):
        Chunk("sideways", b"", 0.0)  # type: ignore[arg-type]


# --- the relay ---------------------------------------------------------------------------


def test_ssl_client_through_the_relay(pki: dict, tls_server: Callable[..., Server]) -> None:
    server = tls_server()
    client = client_context(pki)
    with Relay(server.address) as relay:
        _, reply = tls_get(relay, client)
        (capture,) = relay.wait(1)
    assert reply == RESPONSE
    assert capture.info["closed"] is True and "error" not in capture.info
    labels = [(e.direction, e.label) for e in capture.events()]
    assert labels[:2] == [("c2s", "ClientHello"), ("s2c", "ServerHello")]
    assert capture.version == "TLSv1.3"
    assert capture.client_hello is not None and capture.client_hello.server_name == "localhost"
    # What the relay forwarded is what the server received: the request is inside the
    # client's application_data records, and nothing else was sent.
    assert all(e.encrypted for e in capture.events() if e.record.content_type == 23)
    assert server.received == [b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"]


def test_tls12_through_the_relay_matches_the_parser(
    pki: dict, tls_server: Callable[..., Server]
) -> None:
    server = tls_server(version=ssl.TLSVersion.TLSv1_2)
    with Relay(server.address) as relay:
        tls_get(relay, client_context(pki))
        (capture,) = relay.wait(1)
    names = [e.label for e in capture.events()]
    assert names[:8] == [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "ServerKeyExchange",
        "ServerHelloDone",
        "ClientKeyExchange",
        "ChangeCipherSpec",
        "Finished (encrypted)",
    ]
    assert capture.version == "TLSv1.2"


def test_requests_through_the_relay(
    pki: dict, tls_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = tls_server()
    cafile = tmp_path / "root.pem"
    cafile.write_bytes(pki["root"].cert_pem)
    with Relay(server.address) as relay, requests.Session() as session:
        session.trust_env = False  # no proxies from the environment
        response = session.get(f"https://localhost:{relay.port}/", verify=str(cafile), timeout=10)
        relay.wait(1)
    assert response.status_code == 200 and response.text == "hello"
    hello = relay.captures[0].client_hello
    assert hello is not None and hello.server_name == "localhost"
    assert "http/1.1" in hello.alpn  # urllib3 offers ALPN http/1.1


def test_delay_costs_round_trips(pki: dict, tls_server: Callable[..., Server]) -> None:
    delay = 0.05
    for version, round_trips in ((ssl.TLSVersion.TLSv1_3, 1), (ssl.TLSVersion.TLSv1_2, 2)):
        server = tls_server(version=version)
        client = client_context(pki)
        with Relay(server.address, delay=delay) as relay:
            elapsed, reply = tls_get(relay, client)
            (capture,) = relay.wait(1)
        assert reply == RESPONSE
        # Each direction waits >= delay, so a full handshake (1 RTT in TLS 1.3, 2 in 1.2)
        # takes at least 2 * delay per round trip. The TCP connect to the relay is
        # answered by the kernel and is not delayed.
        assert elapsed >= 2 * delay * round_trips, (version, elapsed)
        first = {d: next(c.t for c in capture.chunks if c.direction == d) for d in ("c2s", "s2c")}
        assert first["s2c"] - first["c2s"] >= delay  # ServerHello left after ClientHello arrived


def test_delay_does_not_serialise_connections(pki: dict, tls_server: Callable[..., Server]) -> None:
    server = tls_server()
    client = client_context(pki)
    count, delay = 20, 0.1
    results: list[bytes] = []
    with Relay(server.address, delay=delay) as relay:
        start = time.perf_counter()
        threads = [
            threading.Thread(target=lambda: results.append(tls_get(relay, client)[1]))
            for _ in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        elapsed = time.perf_counter() - start
        relay.wait(count)
    assert results == [RESPONSE] * count
    # Each connection needs >= 2 round trips (handshake, request) = 4 * delay = 0.4 s.
    # One after another that would be >= 8 s; concurrently it is ~0.4 s.
    assert 4 * delay <= elapsed < 3.0, elapsed
    assert len(relay.captures) == count


def test_tamper_hook_breaks_the_record_mac(pki: dict, tls_server: Callable[..., Server]) -> None:
    server = tls_server()
    with Relay(server.address, tamper=flip_record_byte("s2c", content_type=23)) as relay:
        with pytest.raises(ssl.SSLError) as info:
            tls_get(relay, client_context(pki))
        (capture,) = relay.wait(1)
    # The client refused the server's record (RFC 8446 §5.2). OpenSSL 3.0 names the
    # reason; OpenSSL 3.2+ wraps it in the record layer's general RECORD_LAYER_FAILURE,
    # and Python shows only that last error (helpers/diagnose/reasons.py reads both).
    if ssl.OPENSSL_VERSION_INFO >= (3, 2):
        assert info.value.reason == "RECORD_LAYER_FAILURE", info.value
    else:
        assert info.value.reason == "DECRYPTION_FAILED_OR_BAD_RECORD_MAC", info.value
    assert diagnose.explain(info.value).kind == "bad-record-mac"
    (change,) = capture.info["tampered"]
    assert change["direction"] == "s2c"
    # Exactly one bit differs between what the server sent and what was forwarded.
    forwarded = next(c.data for c in capture.chunks if c.direction == "s2c")
    diff = [a ^ b for a, b in zip(change["original"], forwarded, strict=True) if a != b]
    assert diff == [1]
    # The client's alert is encrypted (it already has handshake keys), so it is type 23.
    assert capture.events()[-1].direction == "c2s"


def test_plain_http_login_is_visible_in_the_bytes(tls_server: Callable[..., Server]) -> None:
    server = tls_server(plain=True)
    with Relay(server.address) as relay:
        with socket.create_connection(relay.address, timeout=5) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: localhost\r\n\r\nuser=ada&password=hunter2"
            )
            reply = b""
            while piece := sock.recv(4096):
                reply += piece
        (capture,) = relay.wait(1)
    assert reply == RESPONSE
    assert b"password=hunter2" in capture.client_bytes
    assert capture.server_bytes == RESPONSE
    assert "hunter2" in capture._repr_html_()


def test_abrupt_close_and_dead_target(pki: dict, tls_server: Callable[..., Server]) -> None:
    server = tls_server()
    with Relay(server.address) as relay:
        rude = socket.create_connection(relay.address, timeout=5)
        rude.sendall(b"\x16\x03\x01")  # a third of a record header, then a TCP reset
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rude.close()
        relay.wait(1)
        _, reply = tls_get(relay, client_context(pki))  # the relay still works
        relay.wait(2)
    assert reply == RESPONSE
    assert relay.captures[0].info["closed"] is True
    # A partial record is not an event; the server may answer the stub with an alert.
    assert all(
        e.direction == "s2c" and e.record.type_name == "alert" for e in relay.captures[0].events()
    )
    # A target nobody listens on: the client just sees the connection close.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()  # bound, not listening: connections are refused
        with Relay(dead) as relay:
            with socket.create_connection(relay.address, timeout=5) as sock:
                assert sock.recv(10) == b""
            (capture,) = relay.wait(1)
    assert "connect to target failed" in capture.info["error"]


def test_stop_releases_threads_and_port(pki: dict, tls_server: Callable[..., Server]) -> None:
    server = tls_server()
    before = {t.ident for t in threading.enumerate()}
    relay = Relay(server.address)
    port = relay.port
    idle = socket.create_connection(relay.address, timeout=5)  # left open on purpose
    time.sleep(0.05)
    relay.stop()
    relay.stop()  # idempotent
    assert not relay._thread.is_alive()
    assert {t.ident for t in threading.enumerate()} - before <= {t.ident for t in server._threads}
    assert idle.recv(10) == b""  # the relay closed its side
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert relay.captures[0].info["error"] == "relay stopped"


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is part of the course image")
def test_openssl_s_client_hello_matches_our_decoding(
    pki: dict, tls_server: Callable[..., Server]
) -> None:
    server = tls_server()
    with Relay(server.address) as relay:
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{relay.port}", "-servername", "lab.localhost",
             "-alpn", "h2,http/1.1", "-tls1_3", "-msg"],
            input=b"", capture_output=True, timeout=20,
        )  # fmt: skip
        (capture,) = relay.wait(1)
    out = result.stdout.decode()
    # openssl's own hex dump of the ClientHello it sent (-msg) ...
    block = re.search(
        r">>> TLS 1.3, Handshake \[length [0-9a-f]+\], ClientHello\n((?:    .*\n)+)", out
    )
    assert block is not None, out[:2000]
    theirs = bytes.fromhex(block.group(1).replace("\n", " "))
    # ... is exactly the message our parser found in the relay's bytes.
    message = next(m for e in capture.events() for m in e.messages if m.type_name == "ClientHello")
    assert message.raw == theirs
    hello = capture.client_hello
    assert hello is not None
    assert hello.server_name == "lab.localhost" and hello.alpn == ["h2", "http/1.1"]
    assert hello.supported_versions == ["TLSv1.3"]
    assert set(hello.cipher_suite_names) >= {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"}
    assert "Protocol  : TLSv1.3" in out or "TLSv1.3" in out
