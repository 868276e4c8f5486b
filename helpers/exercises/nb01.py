"""Checks for the exercises of notebook 01 · TLS concepts.

Each check calls the learner's function first, on something cheap, so an unfinished
answer costs nothing; then it makes the real thing (a login captured on loopback, an
AES-GCM box, an X25519 exchange) and compares.
"""

from __future__ import annotations

import os
import secrets
import ssl
import urllib.parse
import urllib.request

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import exercise

# ------------------------------------------------------------------ find_password


def _login(password: str, *, tls: bool) -> object:
    """Log in to a fresh LoginServer through a recording relay; return the Capture."""
    from ..capture import Relay
    from ..pki import CA
    from ..servers import LoginServer

    server_ctx = client_ctx = None
    if tls:
        ca = CA(common_name="Exercise 01 CA")
        leaf = ca.issue("127.0.0.1")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_server(server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
    body = urllib.parse.urlencode({"user": "ada", "password": password}).encode()
    with LoginServer(password=password, tls=server_ctx) as bank, Relay(bank.address) as wire:
        scheme = "https" if tls else "http"
        url = f"{scheme}://127.0.0.1:{wire.port}/login"
        with urllib.request.urlopen(url, data=body, timeout=5, context=client_ctx) as reply:  # noqa: S310 (loopback, fixed scheme)
            reply.read()
        wire.wait(timeout=5)  # urllib closes the connection: the capture is complete
        assert bank.logins and bank.logins[-1].ok, "the checker's own login failed (a bug)"
        return wire.captures[0]


@exercise(
    "nb01",
    params=("capture",),
    hints=[
        "capture.client_bytes holds every byte the client sent, as one bytes object.",
        "A form login sends a body like b'user=ada&password=...'. Find b'password=' in the "
        "bytes and cut until the next b'&', b'\\r' or the end.",
        "The value is URL-encoded (spaces become '+', '&' becomes '%26'): "
        "urllib.parse.parse_qs(body.decode('latin-1')) decodes it for you. "
        "Return None when there is no 'password=' in the bytes (always the case over TLS).",
    ],
)
def find_password(answer):
    from ..capture import Capture, Chunk

    sample = Capture(
        [
            Chunk(
                "c2s",
                b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 31\r\n\r\n"
                b"user=bob&password=open+sesame%21",
                0.0,
            )
        ]
    )
    got = answer(sample)
    assert got == "open sesame!", (
        f"in a hand-made capture whose body is 'user=bob&password=open+sesame%21' you found "
        f"{got!r}; expected 'open sesame!' (decoded: '+' is a space, %21 is '!')"
    )
    secret = f"{secrets.token_hex(4)} & p=w {secrets.choice(['é', 'ß', '€'])}!"
    got = answer(_login(secret, tls=False))
    assert got == secret, (
        f"a fresh plain-HTTP login used the password {secret!r}, you found {got!r}"
    )
    got = answer(_login(secret, tls=True))
    assert got is None, (
        f"over HTTPS the password is encrypted, so there is nothing to find: return None, "
        f"not {got!r}"
    )


# ------------------------------------------------------------------ unseal

_SWALLOWED = (
    "Catch exactly InvalidTag: swallowing every exception turns a bug (a key of the wrong "
    "length, a nonce of the wrong type, a typo) into a quiet 'tampered box', so nobody ever "
    "finds the bug, and code that treats every error as 'just try again' is what attackers "
    "probe for."
)


def _open(answer, key: bytes, nonce: bytes, box: bytes, what: str):
    """Call the learner's unseal; an InvalidTag that escapes gets a sentence, not a crash."""
    try:
        return answer(key, nonce, box)
    except InvalidTag:
        raise AssertionError(
            f"InvalidTag escaped from your function ({what}): decrypt raises it when the tag "
            f"does not match, which is exactly the 'tampered or wrong key' case. Catch it "
            f"(except InvalidTag:) and return None."
        ) from None


@exercise(
    "nb01",
    params=("key", "nonce", "box"),
    hints=[
        "AESGCM(key).decrypt(nonce, box, None) returns the plaintext when the box is intact.",
        "When a single bit has changed, decrypt raises cryptography.exceptions.InvalidTag.",
        "Catch exactly InvalidTag and return None; let anything else propagate "
        "(a bare `except Exception` would hide real bugs, and the check tests for that).",
    ],
)
def unseal(answer):
    key = AESGCM.generate_key(bit_length=128)
    nonce = os.urandom(12)
    message = b"transfer 10 EUR to Bob"
    box = AESGCM(key).encrypt(nonce, message, None)
    got = _open(answer, key, nonce, box, "an untouched box")
    assert got == message, f"an untouched box should open to {message!r}, not {got!r}"
    for position in (0, len(message) // 2, len(message), len(box) - 1):
        bad = bytearray(box)
        bad[position] ^= 0x01
        where = "its tag" if position >= len(message) else "the ciphertext"
        got = _open(answer, key, nonce, bytes(bad), f"one bit flipped in {where}")
        assert got is None, (
            f"one bit flipped in {where} (byte {position}): return None, not {got!r}. A box that "
            f"still opens after tampering is exactly what AES-GCM's tag exists to prevent: "
            f"let decrypt check it."
        )
    other = AESGCM.generate_key(bit_length=128)
    got = _open(answer, other, nonce, box, "the wrong key")
    assert got is None, f"the wrong key must not open the box: return None, not {got!r}"
    big = os.urandom(1000)
    nonce2 = os.urandom(12)
    got = _open(answer, key, nonce2, AESGCM(key).encrypt(nonce2, big, None), "a 1000-byte box")
    assert got == big, "a 1000-byte random message did not come back intact"
    # A programming error must propagate: a 15-byte key is not a wrong key, it is a bug.
    try:
        got = answer(key[:15], nonce, box)
    except ValueError:
        pass  # AESGCM refused the key and the error reached the caller: right
    except InvalidTag:
        raise AssertionError("a 15-byte key should raise ValueError, not InvalidTag") from None
    else:
        raise AssertionError(
            f"given a 15-byte key, your function returned {got!r}; AESGCM raises ValueError "
            f"there (no AES key is 15 bytes long), and your code swallowed it. {_SWALLOWED}"
        )


# ------------------------------------------------------------------ session_key

#: The ``info`` both sides feed to HKDF in the exercise (RFC 5869 §2.3).
INFO = b"tls course 01"


def _expected_key(private: X25519PrivateKey, peer: bytes) -> bytes:
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(shared)


def _raw(public: X25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@exercise(
    "nb01",
    params=("my_private", "peer_public"),
    hints=[
        "X25519PublicKey.from_public_bytes(peer_public) turns the 32 bytes back into a key.",
        "my_private.exchange(that_key) gives the 32-byte shared secret.",
        "Then HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b'tls course 01')"
        ".derive(shared) gives the key.",
    ],
)
def session_key(answer):
    alice, bob = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    alice_pub, bob_pub = _raw(alice.public_key()), _raw(bob.public_key())
    got = answer(alice, bob_pub)
    assert got is not None, "return the 32-byte key, as bytes"
    assert isinstance(got, bytes), f"return bytes, not {type(got).__name__}"
    shared = alice.exchange(bob.public_key())
    assert got != shared, (
        "that is the raw X25519 shared secret: run it through HKDF-SHA256 first "
        "(info=b'tls course 01', 32 bytes). A raw Diffie-Hellman output is not uniformly "
        "random, and TLS never uses it as a key directly (RFC 8446 §7.1)."
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(shared)
    assert got != digest.finalize(), (
        "that is SHA-256 of the shared secret: close, but a key derivation function is the "
        "tool here: HKDF-SHA256 (RFC 5869) with info=b'tls course 01', as TLS 1.3 does."
    )
    assert len(got) == 32, (
        f"you returned {len(got)} bytes, expected 32: ask HKDF for length=32 "
        f"(the lesson's demo derived a 16-byte AES-128 key)"
    )
    want = _expected_key(alice, bob_pub)
    assert got == want, (
        "not the key HKDF-SHA256(shared secret, salt=None, info=b'tls course 01') gives: "
        "check the info bytes and that you used peer_public"
    )
    assert answer(bob, alice_pub) == want, "Bob, with Alice's public key, must reach the same key"
    carol = X25519PrivateKey.generate()
    assert answer(carol, bob_pub) != want, "a third key pair must not reach Alice and Bob's key"
