"""HKDF and the TLS 1.3 key schedule (introduced in notebook 06).

Everything is derived with HKDF (RFC 5869): *Extract* concentrates entropy into a
pseudorandom key, *Expand* stretches a key into as many labelled outputs as needed.
TLS 1.3 wraps Expand in *HKDF-Expand-Label*, which binds every output to a label and a
context, and *Derive-Secret*, whose context is the hash of the handshake so far.
This is the diagram of RFC 8446 §7.1, quoted as is::

                 0
                 |
                 v
       PSK ->  HKDF-Extract = Early Secret
                 |
                 +-----> Derive-Secret(., "ext binder" | "res binder", "")
                 |                     = binder_key
                 |
                 +-----> Derive-Secret(., "c e traffic", ClientHello)
                 |                     = client_early_traffic_secret
                 |
                 +-----> Derive-Secret(., "e exp master", ClientHello)
                 |                     = early_exporter_master_secret
                 v
           Derive-Secret(., "derived", "")
                 |
                 v
       (EC)DHE -> HKDF-Extract = Handshake Secret
                 |
                 +-----> Derive-Secret(., "c hs traffic",
                 |                     ClientHello...ServerHello)
                 |                     = client_handshake_traffic_secret
                 |
                 +-----> Derive-Secret(., "s hs traffic",
                 |                     ClientHello...ServerHello)
                 |                     = server_handshake_traffic_secret
                 v
           Derive-Secret(., "derived", "")
                 |
                 v
       0 -> HKDF-Extract = Master Secret
                 |
                 +-----> Derive-Secret(., "c ap traffic",
                 |                     ClientHello...server Finished)
                 |                     = client_application_traffic_secret_0
                 |
                 +-----> Derive-Secret(., "s ap traffic",
                 |                     ClientHello...server Finished)
                 |                     = server_application_traffic_secret_0
                 |
                 +-----> Derive-Secret(., "exp master",
                 |                     ClientHello...server Finished)
                 |                     = exporter_master_secret
                 |
                 +-----> Derive-Secret(., "res master",
                                       ClientHello...client Finished)
                                       = resumption_master_secret

The key log holds the four *traffic secrets* (the ``=`` lines in the middle), so a
decryptor never needs the (EC)DHE secret. :func:`key_schedule` walks the whole
diagram from the shared secret, as the endpoints do; the tests check it against the
published trace of RFC 8448. What a traffic secret becomes is in :mod:`.traffic`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .suites import CipherSuite


def hkdf_extract(suite: CipherSuite, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) = HMAC-Hash(salt, IKM) (RFC 5869 §2.2).

    An absent salt or IKM is a string of Hash.length zero bytes (RFC 8446 §7.1).
    """
    salt = salt or bytes(suite.hash_length)
    ikm = ikm or bytes(suite.hash_length)
    mac = HMAC(salt, suite.hash)
    mac.update(ikm)
    return mac.finalize()


# RFC 8446 §7.1 (Key Schedule):
#
#     HKDF-Expand-Label(Secret, Label, Context, Length) =
#          HKDF-Expand(Secret, HkdfLabel, Length)
#
#     Where HkdfLabel is specified as:
#
#     struct {
#         uint16 length = Length;
#         opaque label<7..255> = "tls13 " + Label;
#         opaque context<0..255> = Context;
#     } HkdfLabel;


def hkdf_label(label: bytes | str, context: bytes, length: int) -> bytes:
    """Serialize an HkdfLabel: 2-byte length, then two vectors with 1-byte lengths."""
    if isinstance(label, str):
        label = label.encode("ascii")
    full_label = b"tls13 " + label
    return (
        length.to_bytes(2, "big")
        + bytes([len(full_label)])
        + full_label
        + bytes([len(context)])
        + context
    )


def hkdf_expand_label(
    suite: CipherSuite, secret: bytes, label: bytes | str, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, Length)."""
    info = hkdf_label(label, context, length)
    return HKDFExpand(algorithm=suite.hash, length=length, info=info).derive(secret)


def derive_secret(suite: CipherSuite, secret: bytes, label: bytes | str, messages: bytes) -> bytes:
    """Derive-Secret(Secret, Label, Messages) =
    HKDF-Expand-Label(Secret, Label, Transcript-Hash(Messages), Hash.length)."""
    return hkdf_expand_label(suite, secret, label, suite.digest(messages), suite.hash_length)


@dataclass(frozen=True)
class KeySchedule:
    """Every secret of the §7.1 diagram for one (EC)DHE handshake without a PSK."""

    early_secret: bytes
    handshake_secret: bytes
    client_handshake_traffic_secret: bytes
    server_handshake_traffic_secret: bytes
    master_secret: bytes
    client_application_traffic_secret_0: bytes | None = None
    server_application_traffic_secret_0: bytes | None = None
    exporter_master_secret: bytes | None = None
    resumption_master_secret: bytes | None = None


def key_schedule(
    suite: CipherSuite,
    shared_secret: bytes,
    hello_messages: bytes,
    through_server_finished: bytes | None = None,
    through_client_finished: bytes | None = None,
) -> KeySchedule:
    """Walk the §7.1 diagram top to bottom, as the two endpoints do.

    ``hello_messages`` is ClientHello + ServerHello (handshake headers included);
    the later transcripts extend it. Without a PSK, the early secret extracts zeros.
    """
    early = hkdf_extract(suite, b"", b"")
    handshake = hkdf_extract(suite, derive_secret(suite, early, "derived", b""), shared_secret)
    master = hkdf_extract(suite, derive_secret(suite, handshake, "derived", b""), b"")
    app: dict[str, bytes] = {}
    if through_server_finished is not None:
        app["client_application_traffic_secret_0"] = derive_secret(
            suite, master, "c ap traffic", through_server_finished
        )
        app["server_application_traffic_secret_0"] = derive_secret(
            suite, master, "s ap traffic", through_server_finished
        )
        app["exporter_master_secret"] = derive_secret(
            suite, master, "exp master", through_server_finished
        )
    if through_client_finished is not None:
        app["resumption_master_secret"] = derive_secret(
            suite, master, "res master", through_client_finished
        )
    return KeySchedule(
        early_secret=early,
        handshake_secret=handshake,
        client_handshake_traffic_secret=derive_secret(
            suite, handshake, "c hs traffic", hello_messages
        ),
        server_handshake_traffic_secret=derive_secret(
            suite, handshake, "s hs traffic", hello_messages
        ),
        master_secret=master,
        **app,
    )
