"""Checks for the exercises of notebook 06 · The handshake up close.

The checks feed the learner's functions real handshakes: ClientHellos and whole
connections recorded in memory with :func:`helpers.capture.capture_memory` (fresh
random names, fresh keys, every run), plus the published example handshake of
RFC 8448 §3 as a second, independent implementation.
"""

from __future__ import annotations

import os
import secrets
import ssl
from typing import Any

from . import exercise

# RFC 8448 §3 ("Simple 1-RTT Handshake", January 2019): the client's first record, whose
# ClientHello carries server_name "server", and two traffic secrets with the write keys
# and IVs the RFC derives from them (TLS_AES_128_GCM_SHA256). Published test data.
_RFC8448_CLIENT_HELLO_RECORD = bytes.fromhex(
    "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7"
    "000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017"
    "001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dba"
    "feb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e04030503060302030804080508"
    "0604010501060102010402050206020202002d00020101001c00024001"
)
_RFC8448_KEYS = [
    # (secret, key, iv)
    (
        "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",  # server handshake
        "3fce516009c21727d0f2e4e86ee403bc",
        "5d313eb2671276ee13000b30",
    ),
    (
        "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",  # client application
        "17422dda596ed5d9acd890e3c63f5051",
        "5b78923dee08579033e523d9",
    ),
]


def _ca_and_server(*names: str) -> tuple[Any, ssl.SSLContext]:
    from ..pki import CA

    ca = CA(common_name="Notebook 06 Checker CA")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue(*names).configure_server(server)
    return ca, server


def _client(ca: Any, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def _first_flight(client: ssl.SSLContext, server: ssl.SSLContext, name: str) -> bytes:
    """The bytes of the client's first flight: its ClientHello record."""
    from ..capture import capture_memory

    capture = capture_memory(client, server, name, keylog=False, request=None, response=None)
    return capture.chunks[0].data


@exercise(
    "nb06",
    hints=[
        "Skip the 5-byte record header and the 4-byte handshake header: the ClientHello body "
        "starts at data[9]. Then read the fields in order with io.BytesIO, as the notebook did.",
        "Fixed fields: legacy_version (2) and random (32). Vectors with a length prefix: "
        "session id (1-byte length), cipher suites (2), compression methods (1), extensions (2).",
        "Walk the extensions: type (2 bytes), length (2 bytes), data. In server_name (type 0) "
        "the data is: list length (2), name type (1, 0 = host_name), name length (2), the name.",
        "No server_name extension at all means no SNI: return None (Python sends none for IP addresses).",
    ],
)
def server_name_from(answer):
    ca, server = _ca_and_server("*.sni.localhost", "127.0.0.1")
    names = [f"{secrets.token_hex(3)}.sni.localhost" for _ in range(2)]
    cases = [
        (_first_flight(_client(ca), server, names[0]), names[0], "a TLS 1.3 ClientHello"),
        (
            _first_flight(_client(ca, ssl.TLSVersion.TLSv1_2), server, names[1]),
            names[1],
            "a TLS 1.2-only ClientHello",
        ),
        (_first_flight(_client(ca), server, "127.0.0.1"), None, "a ClientHello to an IP address"),
        (_RFC8448_CLIENT_HELLO_RECORD, "server", "RFC 8448's example ClientHello"),
    ]
    for data, want, what in cases:
        got = answer(data)
        if isinstance(got, (bytes, bytearray)) and want is not None:
            raise AssertionError(
                f"for {what} you returned bytes {bytes(got)!r}: decode the name to str "
                "(host names in SNI are ASCII, RFC 6066 §3)"
            )
        if want is None:
            assert got is None, f"{what} carries no server_name extension, you returned {got!r}"
        else:
            assert got == want, f"for {what} the server name is {want!r}, you returned {got!r}"


_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


def _as_pair(got: Any, what: str) -> tuple[bytes, bytes]:
    assert isinstance(got, tuple) and len(got) == 2, (
        f"return a tuple (key, iv) of bytes, not {got!r} ({what})"
    )
    key, iv = got
    assert isinstance(key, bytes) and isinstance(iv, bytes), f"key and iv must be bytes ({what})"
    return key, iv


@exercise(
    "nb06",
    hints=[
        "The cipher suite name says the hash (…_SHA256 or …_SHA384) and the key length: "
        "AES_128 → 16 bytes, AES_256 and CHACHA20 → 32 bytes. The IV is 12 bytes for all three.",
        "HkdfLabel = length (2 bytes) + len(b'tls13 ' + label) (1 byte) + b'tls13 ' + label "
        "+ len(context) (1 byte) + context, with an empty context here.",
        "HKDFExpand(algorithm=hashes.SHA256(), length=16, info=hkdf_label).derive(secret), "
        "once with the label b'key' and once with b'iv'.",
    ],
)
def traffic_key_and_iv(answer):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from .. import tls13
    from ..capture import capture_memory

    for secret, key, iv in _RFC8448_KEYS:
        got = _as_pair(
            answer(bytes.fromhex(secret), "TLS_AES_128_GCM_SHA256"),
            "RFC 8448",
        )
        assert got == (bytes.fromhex(key), bytes.fromhex(iv)), (
            f"for RFC 8448's secret {secret[:16]}… (TLS_AES_128_GCM_SHA256) the key is {key} and "
            f"the iv {iv}; you returned {got[0].hex()} and {got[1].hex()}"
        )
    for name in _SUITES:
        suite = tls13.suite_named(name)
        secret = os.urandom(suite.hash_length)
        want = tls13.traffic_keys(suite, secret)
        got = _as_pair(answer(secret, name), name)
        if (len(got[0]), len(got[1])) != (len(want.key), len(want.iv)):
            raise AssertionError(
                f"for {name} your key is {len(got[0])} bytes and your iv {len(got[1])}; "
                f"expected {len(want.key)} and {len(want.iv)} (the key length comes from the "
                "AEAD: AES_128 → 16, AES_256 and CHACHA20 → 32; the iv is always 12)"
            )
        assert got == (want.key, want.iv), (
            f"for {name} your key and iv have the right lengths but the wrong bytes: the hash "
            f"must be the suite's own ({name.rsplit('_', 1)[-1]}), for HKDF-Expand-Label as for "
            "the whole key schedule (RFC 8446 §7.1)"
        )
    # A real connection: your key and IV must open the server's first encrypted record.
    ca, server = _ca_and_server("localhost")
    capture = capture_memory(_client(ca), server, "localhost")
    suite_name = capture.cipher_suite or ""
    random = capture.client_hello.random if capture.client_hello else b""
    secret = tls13.parse_keylog(capture.info["keylog"])[random]["SERVER_HANDSHAKE_TRAFFIC_SECRET"]
    key, iv = _as_pair(answer(secret, suite_name), suite_name)
    record = next(r for r in capture.records("s2c") if r.content_type == 23)
    try:
        AESGCM(key).decrypt(tls13.record_nonce(iv, 0), record.payload, record.raw[:5])
    except Exception:  # noqa: BLE001 - InvalidTag, or a key of the wrong length
        raise AssertionError(
            f"your key and iv for {suite_name} did not open the first encrypted record of a real "
            "connection"
        ) from None


def _round_trip_captures() -> list[tuple[str, Any, int]]:
    """Real handshakes, in memory, with the round trips the protocol needs."""
    from ..capture import capture_memory

    ca, server = _ca_and_server("localhost")
    tls12, tls13_client = _client(ca, ssl.TLSVersion.TLSv1_2), _client(ca)
    full12 = capture_memory(tls12, server, "localhost", keylog=False)
    resumed12 = capture_memory(
        tls12, server, "localhost", keylog=False, session=full12.info["session"]
    )
    full13 = capture_memory(tls13_client, server, "localhost", keylog=False)
    resumed13 = capture_memory(
        tls13_client, server, "localhost", keylog=False, session=full13.info["session"]
    )
    picky = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue("localhost").configure_server(picky)
    picky.set_ecdh_curve("prime256v1")  # forces a HelloRetryRequest (the client guesses X25519)
    retry13 = capture_memory(_client(ca), picky, "localhost", keylog=False)
    assert resumed12.info.get("session_reused") and resumed13.info.get("session_reused")
    assert retry13.hello_retry_request is not None
    return [
        ("a full TLS 1.2 handshake", full12, 2),
        (
            "a resumed TLS 1.2 handshake (the abbreviated handshake, RFC 5246 §7.3: the server "
            "sends its Finished first, so the client may send data after one round trip)",
            resumed12,
            1,
        ),
        ("a full TLS 1.3 handshake", full13, 1),
        ("a resumed TLS 1.3 handshake", resumed13, 1),
        (
            "a TLS 1.3 handshake with a HelloRetryRequest (count from the capture, not from "
            "the version: the retry costs a round trip)",
            retry13,
            2,
        ),
    ]


@exercise(
    "nb06",
    hints=[
        "capture.events() lists the records in order; each Event has .direction ('c2s' or 's2c') "
        "and .encrypted.",
        "A flight starts whenever the direction changes. Count the flights whose direction is 's2c'.",
        "Stop counting at the first server record with encrypted=True: that flight carries the "
        "server's Finished, and after it the client may send data.",
    ],
)
def round_trips(answer):
    for what, capture, want in _round_trip_captures():
        got = answer(capture)
        assert got is not None, "your function returned None: return the count as an int"
        assert isinstance(got, int), f"return an int, not {got!r}"
        assert got == want, f"{what} takes {want} round trip(s); you counted {got}"
