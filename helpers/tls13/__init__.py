"""Decrypt a TLS 1.3 connection from a key log (introduced in notebook 06).

Theory of operation
-------------------
A TLS 1.3 connection starts in the clear: the ClientHello and the ServerHello carry
two ephemeral (EC)DHE public keys. From then on *every* record is encrypted, even the
server's certificate. To read them, you need the secrets both ends derived, and a
passive observer cannot compute those: that is the whole point of ephemeral
Diffie-Hellman. But an endpoint can *tell* you its secrets: OpenSSL (and so Python's
``SSLContext.keylog_filename``) writes them to a *key log*, one line per secret,
labelled with the ClientHello's random bytes.

**A key log is as dangerous as a private key**: whoever holds it reads every byte of
the connections it covers, forward secrecy or not. Never commit one, delete it after
the lesson (``keylog.py`` says why).

From a secret to plaintext is a short chain, and each link is one file below:

1. the key log gives the four *traffic secrets* of a connection, the middle of the
   key schedule of RFC 8446 §7.1 (HKDF all the way down);
2. each traffic secret gives a write key and a write IV (§7.3);
3. each record's nonce is that IV XORed with the record's sequence number (§5.3), and
   the AEAD opens the record, authenticating its 5-byte header too (§5.2);
4. the plaintext ends with the real content type, then optional zero padding;
5. the handshake messages inside are decoded by :mod:`helpers.handshake`, and checked
   as the endpoints checked them: the CertificateVerify signature (§4.4.3) and both
   Finished MACs (§4.4.4).

:func:`decrypt` does all of that for the raw bytes of each direction;
:func:`decrypt_capture` does it for a :class:`~helpers.capture.Capture` and keeps its
clock. Both return a :class:`Decrypted`, which a notebook shows as a table and which
can :meth:`~Decrypted.explain` one record step by step.

Also covered: handshakes the client abandoned (records whose secret the key log lacks are
marked, not fatal) and 0-RTT early data with EndOfEarlyData (Python's ``ssl`` never
sends it; ``openssl s_client -early_data`` does). Not covered: TLS 1.2.

Where things are, in reading order
----------------------------------
Everything below is importable from ``helpers.tls13`` itself.

=====================  ===============================================================
``keylog.py``          the NSS key log format, and why it is dangerous: ``parse_keylog``
``suites.py``          the three TLS 1.3 cipher suites: ``CipherSuite``, ``SUITES``,
                       ``suite_named``
``schedule.py``        HKDF-Extract, HKDF-Expand-Label, Derive-Secret and the §7.1
                       diagram: ``KeySchedule``, ``key_schedule``
``traffic.py``         a traffic secret's write key and IV: ``TrafficKeys``,
                       ``traffic_keys``; KeyUpdate and ``next_traffic_secret``
``protection.py``      one record: ``record_nonce``, ``open_record``, ``seal_record``,
                       ``parse_inner_plaintext`` (TLSInnerPlaintext)
``authentication.py``  what the endpoints check: ``verify_signature`` for
                       CertificateVerify, ``finished_verify_data`` for Finished
``result.py``          what ``decrypt`` returns: ``Decrypted``, ``Record``,
                       ``Message``, and the step-by-step ``Explanation``
``timeline.py``        the two directions merged into one timeline
``connection.py``      ``decrypt`` and ``decrypt_capture``: one connection replayed
=====================  ===============================================================
"""

from __future__ import annotations

from .authentication import finished_verify_data, verify_signature
from .connection import decrypt, decrypt_capture
from .keylog import parse_keylog
from .protection import open_record, parse_inner_plaintext, record_nonce, seal_record
from .result import Decrypted, Explanation, Message, Record
from .schedule import KeySchedule, derive_secret, hkdf_expand_label, hkdf_extract, key_schedule
from .suites import SUITES, CipherSuite
from .traffic import TrafficKeys, traffic_keys

# Also importable from here, as they were before the package was split (not in __all__).
from .authentication import (  # isort: skip
    certificate_verify_content as certificate_verify_content,
)
from .keylog import KEYLOG_LABELS as KEYLOG_LABELS  # isort: skip
from .result import AppData as AppData  # isort: skip
from .result import Direction as Direction  # isort: skip
from .schedule import hkdf_label as hkdf_label  # isort: skip
from .suites import AEAD as AEAD  # isort: skip
from .suites import suite_named as suite_named  # isort: skip
from .traffic import decode_key_update as decode_key_update  # isort: skip
from .traffic import next_traffic_secret as next_traffic_secret  # isort: skip

__all__ = [
    "SUITES",
    "CipherSuite",
    "Decrypted",
    "Explanation",
    "KeySchedule",
    "Message",
    "Record",
    "TrafficKeys",
    "decrypt",
    "decrypt_capture",
    "derive_secret",
    "finished_verify_data",
    "hkdf_expand_label",
    "hkdf_extract",
    "key_schedule",
    "open_record",
    "parse_inner_plaintext",
    "parse_keylog",
    "record_nonce",
    "seal_record",
    "traffic_keys",
    "verify_signature",
]
