"""helpers.handshake: the sans-IO parser, fed with real TLS bytes made in memory.

The TLS 1.2 and 1.3 connections are real OpenSSL handshakes between two SSLObjects
(helpers.capture.capture_memory). Fragmentation and coalescing are built by hand from
those real message bytes. Hypothesis feeds random and mutated bytes to every public
parse function: the only exception allowed is ParseError.
"""

from __future__ import annotations

import socket
import ssl
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import handshake as hs
from helpers.capture import Capture, Chunk, capture_memory
from helpers.errors import ParseError
from helpers.pki import CA

# --- fixtures: one CA, real captures --------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> dict:
    root = CA(common_name="Handshake Test Root")
    inter = root.create_intermediate(common_name="Handshake Test Intermediate")
    return {"root": root, "leaf": inter.issue("localhost")}


def _contexts(pki: dict, version: ssl.TLSVersion) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki["leaf"].configure_server(server)
    server.set_alpn_protocols(["h2", "http/1.1"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki["root"].configure_trust(client)
    client.set_alpn_protocols(["http/1.1"])
    client.maximum_version = version
    return client, server


@pytest.fixture(scope="module")
def tls12(pki: dict) -> Capture:
    client, server = _contexts(pki, ssl.TLSVersion.TLSv1_2)
    return capture_memory(client, server, server_hostname="localhost")


@pytest.fixture(scope="module")
def tls13(pki: dict) -> Capture:
    client, server = _contexts(pki, ssl.TLSVersion.TLSv1_3)
    return capture_memory(client, server, server_hostname="localhost")


def _messages(capture: Capture, direction: str) -> list[hs.HandshakeMessage]:
    return [m for e in capture.events() if e.direction == direction for m in e.messages]


# --- whole handshakes -----------------------------------------------------------------


def test_tls12_decodes_to_the_rfc_5246_sequence(tls12: Capture) -> None:
    events = tls12.events()
    labels = [(e.direction, e.label) for e in events]
    assert labels[:8] == [
        ("c2s", "ClientHello"),
        ("s2c", "ServerHello"),
        ("s2c", "Certificate"),
        ("s2c", "ServerKeyExchange"),
        ("s2c", "ServerHelloDone"),
        ("c2s", "ClientKeyExchange"),
        ("c2s", "ChangeCipherSpec"),
        ("c2s", "Finished (encrypted)"),
    ]
    # The server answers with (a ticket,) its own CCS and an encrypted Finished.
    server_tail = [e.label for e in events[8:] if e.direction == "s2c"][:3]
    assert server_tail == ["NewSessionTicket", "ChangeCipherSpec", "Finished (encrypted)"]
    # Exactly the records after each side's ChangeCipherSpec are encrypted.
    for direction in ("c2s", "s2c"):
        mine = [e for e in events if e.direction == direction]
        ccs = next(i for i, e in enumerate(mine) if e.record.content_type == 20)
        assert not any(e.encrypted for e in mine[: ccs + 1])
        assert all(e.encrypted for e in mine[ccs + 1 :])
    assert tls12.version == "TLSv1.2" == tls12.info["version"]
    assert events[-1].label == "Alert (encrypted)"  # close_notify, after the CCS


def test_tls13_encrypts_everything_after_server_hello(tls13: Capture) -> None:
    events = tls13.events()
    assert [e.label for e in events[:2]] == ["ClientHello", "ServerHello"]
    rest = events[2:]
    for e in rest:
        if e.record.content_type == 20:  # the middlebox-compatibility CCS (RFC 8446 D.4)
            assert not e.encrypted and e.label == "ChangeCipherSpec"
        else:
            assert e.encrypted and e.record.content_type == 23 and e.messages == []
    server_flight = [e.label for e in rest if e.direction == "s2c" and e.record.content_type == 23]
    assert server_flight[0].startswith("EncryptedExtensions") and "(encrypted)" in server_flight[0]
    assert tls13.version == "TLSv1.3" == tls13.info["version"]
    assert tls13.server_hello is not None
    assert tls13.server_hello.cipher_suite_name == tls13.info["cipher"][0]


def test_sni_and_alpn_in_the_hellos(tls12: Capture, tls13: Capture) -> None:
    for capture in (tls12, tls13):
        hello = capture.client_hello
        assert hello is not None
        assert hello.server_name == "localhost"
        assert hello.alpn == ["http/1.1"]
        assert "x25519" in hello.supported_groups
        assert "ecdsa_secp256r1_sha256" in hello.signature_algorithms
        assert len(hello.random) == 32
    # TLS 1.2: the chosen protocol is in ServerHello, in clear.
    assert tls12.server_hello is not None and tls12.server_hello.alpn == "http/1.1"
    # TLS 1.3: it moved into EncryptedExtensions, so the clear ServerHello has none.
    assert tls13.server_hello is not None and tls13.server_hello.alpn is None
    assert tls13.info["alpn"] == "http/1.1"


def test_tls13_client_hello_offers_what_openssl_offers(tls13: Capture) -> None:
    hello = tls13.client_hello
    assert hello is not None
    assert hello.supported_versions[0] == "TLSv1.3" and "TLSv1.2" in hello.supported_versions
    assert hello.highest_version == "TLSv1.3"
    assert hello.legacy_version == 0x0303
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} <= set(hello.cipher_suite_names)
    assert "TLS_CHACHA20_POLY1305_SHA256" in hello.cipher_suite_names
    assert not any(name.startswith("unknown") for name in hello.cipher_suite_names)
    shares = [(k.group_name, k.key_length) for k in hello.key_shares]
    if ssl.OPENSSL_VERSION_INFO >= (3, 5):
        # OpenSSL 3.5 offers the hybrid post-quantum group first: an ML-KEM-768
        # encapsulation key (1184 bytes) + an X25519 share (32) = 1216 bytes, then plain
        # x25519 for servers without it. The server picks the hybrid: its share is an
        # ML-KEM ciphertext (1088 bytes) + X25519 (32) = 1120 bytes.
        assert shares == [("X25519MLKEM768", 1216), ("x25519", 32)]
        assert hello.supported_groups[:2] == ["X25519MLKEM768", "x25519"]
        chosen = ("X25519MLKEM768", 1120)
    else:
        # OpenSSL 3.0: one X25519 share, 32 bytes (RFC 7748); no post-quantum group.
        assert shares == [("x25519", 32)]
        assert "X25519MLKEM768" not in hello.supported_groups
        chosen = ("x25519", 32)
    assert hello.psk_modes == ["psk_dhe_ke"]
    assert len(hello.session_id) == 32  # the middlebox-compatibility fake session id
    server = tls13.server_hello
    assert server is not None and server.key_share is not None
    assert (server.key_share.group_name, server.key_share.key_length) == chosen
    assert server.session_id == hello.session_id  # echoed
    assert not server.is_hello_retry_request and server.downgrade_sentinel is None


def test_tls12_certificate_message_is_the_servers_der(tls12: Capture, pki: dict) -> None:
    certificate = next(m for m in _messages(tls12, "s2c") if m.type_name == "Certificate")
    decoded = certificate.decode()
    assert isinstance(decoded, hs.Certificate)
    leaf_der = pki["leaf"].cert.public_bytes(serialization.Encoding.DER)
    assert decoded.certificates[0] == leaf_der == tls12.info["server_certificate"]
    chain = decoded.x509()
    assert len(chain) == 2  # leaf + intermediate, never the root
    assert chain[1] == pki["leaf"].issuer.cert


def test_tls12_key_exchange_messages(tls12: Capture) -> None:
    server = {m.type_name: m for m in _messages(tls12, "s2c")}
    ske = server["ServerKeyExchange"].decode()
    assert isinstance(ske, hs.ServerKeyExchange)
    assert ske.key_exchange == "ECDHE" and ske.group_name == "x25519" and len(ske.public) == 32
    assert ske.signature_algorithm_name == "ecdsa_secp256r1_sha256"  # the leaf is P-256
    assert isinstance(server["ServerHelloDone"].decode(), hs.ServerHelloDone)
    assert server["ServerHelloDone"].body == b""
    client = {m.type_name: m for m in _messages(tls12, "c2s")}
    cke = client["ClientKeyExchange"].decode()
    assert isinstance(cke, hs.ClientKeyExchange)
    assert cke.key_exchange == "ECDHE" and len(cke.exchange_keys) == 32
    suite = tls12.server_hello.cipher_suite  # type: ignore[union-attr]
    assert hs.key_exchange_of(suite) == "ECDHE"
    assert tls12.server_hello.cipher_suite_name.startswith("TLS_ECDHE_ECDSA_WITH_")  # type: ignore[union-attr]


def test_static_rsa_key_exchange_has_no_server_key_exchange() -> None:
    root = CA(common_name="RSA Test Root", key_type="rsa")
    leaf = root.issue("localhost", key_type="rsa")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_server(server)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    root.configure_trust(client)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    for ctx in (client, server):
        ctx.set_ciphers("AES128-GCM-SHA256")  # RSA key transport: no forward secrecy
    capture = capture_memory(client, server)
    names = [m.type_name for e in capture.events() for m in e.messages]
    assert names[:5] == [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "ServerHelloDone",
        "ClientKeyExchange",
    ]
    cke = next(m for m in _messages(capture, "c2s") if m.msg_type == 16)
    decoded = hs.parse_client_key_exchange(cke.body, key_exchange="RSA")
    assert len(decoded.exchange_keys) == 256  # RSA-2048 ciphertext of the premaster secret
    assert capture.cipher_suite == "TLS_RSA_WITH_AES_128_GCM_SHA256"


def test_hello_retry_request_is_recognised(pki: dict) -> None:
    client, server = _contexts(pki, ssl.TLSVersion.TLSv1_3)
    server.set_ecdh_curve("secp384r1")  # the client guesses x25519: the server asks again
    capture = capture_memory(client, server)
    hrr = capture.hello_retry_request
    assert hrr is not None and hrr.random == hs.HRR_RANDOM
    assert hrr.selected_group == "secp384r1"
    labels = [e.label for e in capture.events()]
    assert labels[:2] == ["ClientHello", "HelloRetryRequest"]
    assert labels.count("ClientHello") == 2 and "ServerHello" in labels
    second = capture.client_hellos[1]
    assert [k.group_name for k in second.key_shares] == ["secp384r1"]
    assert capture.version == "TLSv1.3"


def test_failed_tls12_handshake_shows_the_plaintext_alert(pki: dict) -> None:
    client, server = _contexts(pki, ssl.TLSVersion.TLSv1_2)
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    untrusting.maximum_version = ssl.TLSVersion.TLSv1_2
    capture = capture_memory(untrusting, server, check=False)
    last = capture.events()[-1]
    assert (last.direction, last.label, last.encrypted) == (
        "c2s",
        "Alert (fatal, unknown_ca)",
        False,
    )
    assert "CERTIFICATE_VERIFY_FAILED" in capture.info["client_error"]
    alert = hs.parse_alert(last.record.payload)
    assert (alert.level_name, alert.description_name) == ("fatal", "unknown_ca")


# --- framing: fragmentation, coalescing, one byte at a time ------------------------------


def _record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def test_coalesced_and_fragmented_records_reassemble(tls12: Capture) -> None:
    messages = _messages(tls12, "s2c")[:4]  # ServerHello, Certificate, SKE, ServerHelloDone
    flight = b"".join(m.raw for m in messages)
    # Coalescing: all four messages in one record.
    one = hs.parse_records(_record(22, flight))
    assert len(one) == 1
    assert hs.HandshakeParser().feed(one[0].payload) == messages
    # Fragmentation: the same bytes cut into records of 1, 7, 100, ... bytes.
    cuts, pieces, pos = [1, 7, 100, 3, 500], [], 0
    for size in cuts:
        pieces.append(flight[pos : pos + size])
        pos += size
    pieces.append(flight[pos:])
    stream = b"".join(_record(22, p) for p in pieces)
    parser = hs.HandshakeParser()
    got = []
    for record in hs.parse_records(stream):
        got += parser.feed(record.payload)
    assert got == messages and parser.buffered == 0
    # The message that spans records comes out with the record that completes it.
    capture = Capture([Chunk("s2c", stream, 0.0)])
    events = capture.events()
    assert events[0].label == "ServerHello (fragment)" and events[0].messages == []
    assert [m.type_name for e in events for m in e.messages] == [m.type_name for m in messages]


def test_one_byte_at_a_time_gives_the_same_events(tls12: Capture, tls13: Capture) -> None:
    for capture in (tls12, tls13):
        trickle = Capture(
            [
                Chunk(c.direction, c.data[i : i + 1], c.t)
                for c in capture.chunks
                for i in range(len(c.data))
            ]
        )
        slow, fast = trickle.events(), capture.events()
        assert [(e.direction, e.label, e.record, e.encrypted) for e in slow] == [
            (e.direction, e.label, e.record, e.encrypted) for e in fast
        ]
        parser = hs.RecordParser()
        records = []
        for i in range(len(capture.server_bytes)):
            records += parser.feed(capture.server_bytes[i : i + 1])
        assert records == hs.parse_records(capture.server_bytes)


def test_record_offsets_and_raw_roundtrip(tls13: Capture) -> None:
    records = hs.parse_records(tls13.server_bytes)
    assert b"".join(r.raw for r in records) == tls13.server_bytes
    assert [r.offset for r in records] == [
        sum(5 + r.length for r in records[:i]) for i in range(len(records))
    ]
    hello = hs.parse_handshake_messages(records[0].payload)[0]
    assert hello.raw == records[0].payload and hello.type_name == "ServerHello"


# --- errors: one exception type, with an offset -------------------------------------------


def test_plain_http_is_refused_at_byte_zero() -> None:
    parser = hs.RecordParser()
    with pytest.raises(ParseError) as info:
        parser.feed(b"GET / HTTP/1.1\r\n")
    assert info.value.offset == 0 and "plain HTTP" in str(info.value)
    with pytest.raises(ParseError):  # a parser that lost its framing stays broken
        parser.feed(_record(22, b"\x01"))


def test_bad_record_headers() -> None:
    with pytest.raises(ParseError, match="record version") as info:
        hs.parse_records(b"\x16\x05\x01\x00\x01\x00")
    assert info.value.offset == 1
    with pytest.raises(ParseError, match="at most") as info:
        hs.parse_records(b"\x17\x03\x03\xff\xff")
    assert info.value.offset == 3
    with pytest.raises(ParseError, match="ended inside"):
        hs.parse_records(_record(22, b"abcdef")[:-1])
    assert hs.parse_records(_record(22, b"abcdef")[:-1], allow_partial=True) == []


def test_truncated_client_hello_names_the_offset(tls13: Capture) -> None:
    body = _messages(tls13, "c2s")[0].body
    with pytest.raises(ParseError) as info:
        hs.parse_client_hello(body[:40])
    assert info.value.offset == 35  # 2 (version) + 32 (random) + 1 (session id length)
    assert "legacy_session_id" in str(info.value)
    with pytest.raises(ParseError, match="end of the ClientHello"):
        hs.parse_client_hello(body + b"\x00")
    bad = bytearray(body)
    bad[34] = 33  # legacy_session_id<0..32>
    with pytest.raises(ParseError, match=r"0\.\.32"):
        hs.parse_client_hello(bytes(bad))


def test_hand_built_messages() -> None:
    # DHE ServerKeyExchange (RFC 5246 §7.4.3): p, g, Ys, then a digitally-signed element.
    p, g, ys = b"\xff" * 256, b"\x02", b"\x11" * 256
    body = (
        b"".join(len(x).to_bytes(2, "big") + x for x in (p, g, ys)) + b"\x08\x04" + b"\x00\x03sig"
    )
    ske = hs.parse_server_key_exchange(body)
    assert ske.key_exchange == "DHE" and ske.group_name == "2048-bit finite-field group"
    assert ske.public == ys and ske.signature_algorithm_name == "rsa_pss_rsae_sha256"
    # TLS 1.0/1.1 (RFC 4346 §7.4.3): the signature follows the params, with no algorithm.
    legacy = b"".join(len(x).to_bytes(2, "big") + x for x in (p, g, ys)) + b"\x00\x03sig"
    old = hs.parse_server_key_exchange(legacy, legacy=True)
    assert old.signature == b"sig" and old.signature_algorithm is None
    with pytest.raises(ParseError):
        hs.parse_server_key_exchange(legacy)
    # Alerts, CCS, Finished.
    assert repr(hs.parse_alert(b"\x02\x14")) == "Alert(fatal, bad_record_mac)"
    assert hs.parse_change_cipher_spec(b"\x01").value == 1
    with pytest.raises(ParseError):
        hs.parse_change_cipher_spec(b"\x02")
    assert hs.parse_finished(b"\xaa" * 12).verify_data == b"\xaa" * 12
    # A server's empty SNI acknowledgement and an unknown extension kept raw.
    exts = hs.parse_extensions(
        b"\x00\x08" + b"\x00\x00\x00\x00" + b"\xab\xcd\x00\x00", "server_hello"
    )
    assert exts[0].name == "server_name" and exts[0].value is True
    assert exts[1].type == 0xABCD and exts[1].value is None and exts[1].name == "unknown (0xabcd)"
    # TLS 1.3 Certificate with a request context and per-entry extensions.
    cert = b"\x30\x03\x02\x01\x00"
    entry = len(cert).to_bytes(3, "big") + cert + b"\x00\x00"
    body13 = b"\x00" + len(entry).to_bytes(3, "big") + entry
    decoded = hs.parse_certificate(body13, tls13=True)
    assert decoded.certificates == [cert] and decoded.request_context == b""
    with pytest.raises(ParseError, match="DER"):
        decoded.x509()


def test_names_and_grease() -> None:
    assert hs.cipher_suite_name(0x1301) == "TLS_AES_128_GCM_SHA256"
    assert hs.cipher_suite_name(0xC02F) == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert hs.cipher_suite_name(0x009E) == "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"
    assert hs.cipher_suite_name(0x002F) == "TLS_RSA_WITH_AES_128_CBC_SHA"
    assert hs.cipher_suite_name(0x2A2A) == "GREASE (0x2a2a)"
    assert hs.is_grease(0xFAFA) and not hs.is_grease(0x0A1A)
    assert hs.key_exchange_of(0x1301) is None and hs.key_exchange_of(0x009C) == "RSA"
    assert hs.group_name(0x11EC) == "X25519MLKEM768"
    assert hs.version_name(0x0304) == "TLSv1.3"
    assert hs.alert_name(116) == "certificate_required"


def test_displays(tls12: Capture, tls13: Capture) -> None:
    objects: list = []
    for capture in (tls12, tls13):
        for e in capture.events():
            objects.append(e.record)
            for m in e.messages:
                objects += [m, m.decode()]
                if m.msg_type in (1, 2):
                    objects += m.decode().extensions
    objects += [hs.parse_alert(b"\x01\x00"), hs.parse_change_cipher_spec(b"\x01")]
    for obj in objects:
        assert "<table" in obj._repr_html_()
        assert type(obj).__name__ in repr(obj) or repr(obj).startswith(("Extension", "HelloRetry"))
    hello_html = tls13.client_hello._repr_html_()  # type: ignore[union-attr]
    assert "localhost" in hello_html and "TLS_AES_128_GCM_SHA256" in hello_html


# --- robustness: random and mutated bytes ---------------------------------------------------


def _parsers() -> list:
    return [
        hs.parse_client_hello,
        hs.parse_server_hello,
        hs.parse_certificate,
        lambda b: hs.parse_certificate(b, tls13=True),
        hs.parse_server_key_exchange,
        lambda b: hs.parse_server_key_exchange(b, key_exchange="DHE"),
        hs.parse_server_hello_done,
        hs.parse_client_key_exchange,
        lambda b: hs.parse_client_key_exchange(b, key_exchange="ECDHE"),
        hs.parse_finished,
        hs.parse_encrypted_extensions,
        hs.parse_certificate_verify,
        hs.parse_certificate_request,
        lambda b: hs.parse_certificate_request(b, tls13=True),
        hs.parse_new_session_ticket,
        lambda b: hs.parse_new_session_ticket(b, tls13=False),
        hs.parse_change_cipher_spec,
        hs.parse_alert,
        hs.parse_extensions,
        lambda b: hs.parse_extensions(b, "server_hello"),
        lambda b: hs.parse_extensions(b, "hello_retry_request"),
        hs.parse_records,
        hs.parse_handshake_messages,
        lambda b: hs.RecordParser().feed(b),
        lambda b: hs.HandshakeParser().feed(b),
        lambda b: [m.decode() for m in hs.parse_handshake_messages(b, allow_partial=True)],
        _capture_views,
    ]


def _capture_views(data: bytes) -> list:
    capture = Capture([Chunk("c2s", data, 0.0), Chunk("s2c", data, 0.001)])
    capture._repr_html_()  # never raises, even for garbage
    views = [capture.client_hello, capture.server_hello, capture.version]
    return views + capture.events()


def _exercise(data: bytes) -> None:
    for parse in _parsers():
        try:
            result = parse(data)
        except ParseError as exc:
            assert exc.offset is None or 0 <= exc.offset <= len(data) + 5
            continue
        for obj in result if isinstance(result, list) else [result]:
            if obj is not None:
                repr(obj)
                if hasattr(obj, "_repr_html_"):
                    obj._repr_html_()


@pytest.fixture(scope="module")
def seeds(tls12: Capture, tls13: Capture) -> list[bytes]:
    return [m.body for m in _messages(tls13, "c2s")[:1] + _messages(tls13, "s2c")[:1]] + [
        m.body for m in _messages(tls12, "s2c")[:4]
    ]


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_parse_error(data: bytes) -> None:
    _exercise(data)


@SETTINGS
@given(data=st.data())
def test_mutated_real_messages_raise_only_parse_error(
    seeds: list[bytes], data: st.DataObject
) -> None:
    body = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        if action == "flip" and body:
            body[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "cut":
            del body[pos:]
        elif action == "insert":
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        elif body:
            body[pos] = data.draw(st.sampled_from([0x00, 0x01, 0x20, 0x7F, 0xFF]))
    _exercise(bytes(body))
    # The same bytes as a whole record stream and as a capture.
    message = (
        bytes([data.draw(st.sampled_from([1, 2, 11, 12, 16]))])
        + len(body).to_bytes(3, "big")
        + bytes(body)
    )
    _exercise(_record(22, message[: 2**14]))


# --- RFC 8879 CompressedCertificate (OpenSSL 3.2+ sends it; decoded on every version) ---


def _compressed(body: bytes, algorithm: int = 1, announced: int | None = None) -> bytes:
    import zlib

    data = zlib.compress(body)
    length = len(body) if announced is None else announced
    payload = algorithm.to_bytes(2, "big") + length.to_bytes(3, "big")
    payload += len(data).to_bytes(3, "big") + data
    return bytes([25]) + len(payload).to_bytes(3, "big") + payload


def test_compressed_certificate_round_trip(pki: dict) -> None:
    """A real chain in a TLS 1.3 Certificate body, zlib-compressed as OpenSSL 3.2+ does
    (RFC 8879 §4): decoded, named, decompressed, and the same certificates come out."""
    leaf = pki["leaf"]
    ders = [leaf.cert.public_bytes(serialization.Encoding.DER)]
    entries = b"".join(len(d).to_bytes(3, "big") + d + b"\x00\x00" for d in ders)
    body = b"\x00" + len(entries).to_bytes(3, "big") + entries  # empty request context
    (message,) = hs.parse_handshake_messages(_compressed(body))
    assert message.type_name == "CompressedCertificate"
    decoded = message.decode(tls13=True)
    assert isinstance(decoded, hs.CompressedCertificate)
    assert decoded.algorithm_name == "zlib" and decoded.uncompressed_length == len(body)
    assert decoded.decompress() == body
    assert decoded.certificate().certificates == ders
    assert "zlib" in repr(decoded)


def test_compressed_certificate_length_is_checked(pki: dict) -> None:
    """RFC 8879 §4: a decompressed size other than the announced one is bad_certificate;
    and no more than announced is ever inflated (a compression bomb stops early)."""
    body = b"\x00" + (3).to_bytes(3, "big") + b"abc"
    for announced in (len(body) - 1, len(body) + 1):
        (message,) = hs.parse_handshake_messages(_compressed(body, announced=announced))
        with pytest.raises(ParseError, match="bad_certificate"):
            message.decode(tls13=True).decompress()
    (message,) = hs.parse_handshake_messages(_compressed(body, algorithm=2))
    decoded = message.decode(tls13=True)
    assert decoded.algorithm_name == "brotli"
    try:
        import brotli  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ParseError, match="brotli"):
            decoded.decompress()


# --- the registry against OpenSSL and today's code points (issue 12, items 4 and 5b) ------


def _openssl_suites() -> list[tuple[int, str, str]]:
    """(code point, IANA name, OpenSSL name) for every suite the installed openssl knows."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command on this machine: nothing to compare the registry with")
    out = subprocess.run(
        [openssl, "ciphers", "-stdname", "-V", "ALL:COMPLEMENTOFALL"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    rows = []
    for line in out.splitlines():
        # "0xC0,0x2C - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 - ECDHE-ECDSA-AES256-GCM-SHA384 TLSv1.2 ..."
        fields = line.split()
        high, low = fields[0].split(",")
        rows.append(((int(high, 16) << 8) | int(low, 16), fields[2], fields[4]))
    return rows


def test_every_suite_openssl_can_negotiate_has_its_iana_name() -> None:
    rows = _openssl_suites()
    assert len(rows) > 100, rows  # 158 on OpenSSL 3.0.22 and 3.5.9
    wrong = [
        (f"0x{code:04x}", hs.cipher_suite_name(code), iana)
        for code, iana, _ in rows
        if hs.cipher_suite_name(code) != iana
    ]
    assert wrong == []
    # the issue's examples: OpenSSL's name is not the registry's
    named = {openssl_name: (code, iana) for code, iana, openssl_name in rows}
    assert named["CAMELLIA128-SHA"] == (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA")
    assert hs.cipher_suite_name(0x0041) == "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"
    assert all(
        not name.startswith(("CAMELLIA", "ARIA", "ADH", "AECDH"))
        for name in hs.CIPHER_SUITES.values()
    )
    assert all(name.startswith("TLS_") for name in hs.CIPHER_SUITES.values())


def test_the_probe_reports_iana_names_for_every_candidate() -> None:
    from helpers.probe.suites import _candidates, _suite_of

    for version in ("TLSv1", "TLSv1.2"):
        for info in _candidates(version):
            suite = _suite_of(info, version)
            assert suite.iana.startswith("TLS_"), (suite.name, suite.iana)
            assert suite.iana == hs.cipher_suite_name(info["id"] & 0xFFFF)


def test_code_points_of_2026() -> None:
    assert hs.extension_name(0x44CD) == "application_settings"  # Chrome's ALPS, new
    assert hs.extension_name(17513) == "application_settings_old"
    assert hs.extension_name(0x0022) == "delegated_credential"  # RFC 9345
    assert [hs.signature_scheme_name(v) for v in (0x0904, 0x0905, 0x0906)] == [
        "mldsa44",
        "mldsa65",
        "mldsa87",
    ]
    assert [hs.cipher_suite_name(v) for v in (0x0013, 0x0040, 0x006A)] == [
        "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
        "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
        "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    ]
    # the key exchange each name implies, as the ServerKeyExchange parser needs it
    assert hs.key_exchange_of(0x0034) == "DHE"  # DH_anon: same layout, no signature
    assert hs.key_exchange_of(0xC018) == "ECDHE"  # ECDH_anon
    assert hs.key_exchange_of(0x00AE) == "PSK"
    assert hs.key_exchange_of(0x00AC) == "PSK"  # RSA_PSK is not static RSA
    assert hs.key_exchange_of(0xC01E) == "SRP"
    assert hs.key_exchange_of(0x0040) == "DHE"


# --- TLS 1.0: the ServerKeyExchange layout follows the negotiated version (issue 12, item 3) --


def test_tls10_server_key_exchange_from_the_lab_is_decoded_and_its_signature_verifies() -> None:
    """A real capture of the lab's tls-1.0-only server, recorded by the project's Relay.

    The client lowers its own guard (security level 0, minimum TLS 1.0: the row "a client
    that lowers its own guard gets in" of helpers/lab/legacy.py). Decoded with the version
    from the ServerHello, the signature must verify over both randoms and the params with
    SHA-1 (RFC 4492 §5.4, ECDSA in TLS 1.0/1.1): the proof that the layout is right.
    """
    import warnings

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from helpers.capture import Relay
    from helpers.lab import get_lab

    lab = get_lab()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the layout is under test here, not the chain
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 is deprecated
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with Relay(lab.address("tls-1.0-only")) as relay:
        with socket.create_connection(relay.address, timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                assert tls.version() == "TLSv1"
        (capture,) = relay.wait(1)
    assert capture.version == "TLSv1"
    flight = [m for e in capture.events() if e.direction == "s2c" for m in e.messages]
    (ske_message,) = [m for m in flight if m.msg_type == 12]

    # Without the version the TLS 1.2 layout is assumed, and the error says what to pass.
    with pytest.raises(ParseError, match="version="):
        ske_message.decode()

    decoded = hs.decode_messages(flight)
    (ske,) = [d for d in decoded if isinstance(d, hs.ServerKeyExchange)]
    assert ske == ske_message.decode(version=0x0301)
    assert ske.key_exchange == "ECDHE" and ske.signature_algorithm is None and ske.signature
    assert "no algorithm field" in repr(ske)
    (certificate,) = [d for d in decoded if isinstance(d, hs.Certificate)]
    params = ske_message.body[: len(ske_message.body) - 2 - len(ske.signature)]
    signed = capture.client_hello.random + capture.server_hello.random + params
    key = certificate.x509()[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(ske.signature, signed, ec.ECDSA(hashes.SHA1()))  # raises if the layout were wrong

    # The client's messages, decoded with the same ServerHello.
    client = [m for e in capture.events() if e.direction == "c2s" for m in e.messages]
    kinds = [
        type(d).__name__ for d in hs.decode_messages(client, server_hello=capture.server_hello)
    ]
    assert kinds == ["ClientHello", "ClientKeyExchange"]


def test_tls12_server_key_exchange_keeps_its_algorithm_field(tls12: Capture) -> None:
    flight = [m for e in tls12.events() if e.direction == "s2c" for m in e.messages]
    (ske,) = [d for d in hs.decode_messages(flight) if isinstance(d, hs.ServerKeyExchange)]
    assert ske.signature_algorithm is not None
    assert ske.signed_with == hs.signature_scheme_name(ske.signature_algorithm)


# --- issue 13 (L8): what cryptography does with a peer's certificate bytes ------------


def _panicking(*args: object, **kwargs: object) -> None:
    """What cryptography's Rust code raises when it panics (see tests/test_pki.py)."""
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    raise panic("assertion failed: simulated")


def test_a_certificate_cryptography_cannot_read_is_a_parse_error(
    tls12: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Certificate.x509() hands the peer's bytes to cryptography: only ParseError comes out.

    Two ways that used to escape: a certificate whose version field is 5 (cryptography
    raises InvalidVersion, which is not a ValueError) and a Rust panic (a BaseException).
    """
    from cryptography import x509

    certificate = next(m for m in _messages(tls12, "s2c") if m.type_name == "Certificate")
    decoded = certificate.decode()
    leaf = decoded.certificates[0]
    v3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2: X.509 v3 (RFC 5280 §4.1.2.1)
    odd = hs.Certificate([leaf.replace(v3, b"\xa0\x03\x02\x01\x05", 1)])
    with pytest.raises(ParseError, match="certificate 0 .* not a valid X509 version"):
        odd.x509()
    assert "bytes" in repr(odd)  # the display falls back to sizes instead of raising
    monkeypatch.setattr(x509, "load_der_x509_certificate", _panicking)
    with pytest.raises(ParseError, match="panicked") as info:
        decoded.x509()
    assert "\n" not in str(info.value) and info.value.hint
    assert "bytes" in repr(decoded)


def test_a_rust_panic_on_a_joined_labs_crl_is_a_lab_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """helpers/lab/remote/material.py parses the CRL a teacher's endpoint sent (notebook 02).

    (Here beside the other peer-bytes cases; it belongs with tests/test_lab_remote.py.)
    """
    from cryptography import x509

    from helpers.errors import LabError
    from helpers.lab.remote.material import checked_material

    ca = CA(common_name="Material Test Root")
    crl = ca.crl(days=1).public_bytes(serialization.Encoding.PEM).decode()
    data = {"crl_pem": crl, "chains_pem": {}}
    url = "http://127.0.0.4:9/"
    assert checked_material(data, ca.cert, {}, url).crl_pem == crl.encode()
    monkeypatch.setattr(x509, "load_pem_x509_crl", _panicking)
    with pytest.raises(LabError, match="panicked") as info:
        checked_material(data, ca.cert, {}, url)
    assert str(info.value).startswith(f"The lab description from {url} could not be checked")
    assert "\n" not in str(info.value) and "ask the teacher" in info.value.hint
