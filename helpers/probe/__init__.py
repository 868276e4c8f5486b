"""Probe a TLS server like a tiny sslyze, then grade it (introduced in notebook 08).

Theory of operation
-------------------
A server's TLS configuration cannot be read from outside; it can only be *asked*, one
handshake at a time. :func:`scan` asks:

1. **Versions.** One handshake per version with ``minimum_version = maximum_version``
   pinned to it: TLS 1.0, 1.1, 1.2, 1.3. The server either answers with a ServerHello
   for that version or refuses (alert protocol_version, RFC 8446 §6.2). SSL 2 and 3
   cannot be tried: SSL 2 left OpenSSL in 1.1.0 and SSL 3 is not built by default
   (``no-ssl3``); both are prohibited (RFC 6176, RFC 7568).
2. **Cipher suites (TLS 1.2 and older).** One handshake per suite, offering that suite
   *alone*, at the highest version below 1.3 the server accepts. Before Python 3.15
   TLS 1.3 suites cannot be chosen from Python (3.15 adds ``set_ciphersuites``), so the
   scan reports the one the server *negotiated*.
3. **Key exchange.** Before Python 3.15, Python does not say which (EC)DH group a
   handshake used, so the scan reads it off the wire, from a few recorded handshakes
   (on 3.15+, ``SSLSocket.group()`` names the TLS 1.3 group). On OpenSSL >= 3.5 that
   group is usually the hybrid X25519MLKEM768, rated by its classical part (``keys``).
4. **Trust.** One last handshake with a *verifying* context (chain to a trusted root,
   host name), and over that verified connection one ``GET /`` to read the
   ``Strict-Transport-Security`` header.

The probe handshakes (steps 1-3) switch off verification and lower OpenSSL's security
level to 0: a scanner must *see* a 1024-bit DH group or a TLS 1.0 server to report it.
Whether the certificate is trusted comes from step 4 alone.

:func:`grade` turns a :class:`Scan` into a letter, in the spirit of the SSL Labs *SSL
Server Rating Guide* (version 2009 and its published grading changes): three category
scores (protocol 30 %, key exchange 30 %, cipher strength 40 %), a letter from the
total, then caps for known weaknesses and the special grades T (not trusted) and M
(name mismatch). Every number and rule is in a table you can read
(:data:`PROTOCOL_SCORES`, :data:`KEY_EXCHANGE_SCORES`, :data:`CIPHER_SCORES`,
:data:`LETTERS`, :data:`RULES`), and a :class:`Grade` shows how it was reached. It is
simplified on purpose compared with SSL Labs (``grading`` says how).

Where things are, in reading order
----------------------------------
Everything below is importable from ``helpers.probe`` itself.

===================  =============================================================
``attempts.py``      one handshake attempt: ``VERSIONS``, the probe context that
                     offers one version (or one suite) and trusts nothing
``suites.py``        ``Suite``: which suites a scan offers, what an accepted one tells
``keys.py``          key strength in RSA-equivalent bits (NIST SP 800-57), and
                     ``CertificateFacts``, what the scan reads from the certificate
``key_exchange.py``  ``KeyExchange``: the (EC)DH group read from recorded handshake
                     bytes (ServerKeyExchange, TLS 1.3 key_share);
                     ``server_key_shares()``, to see a reused "ephemeral" key
``hsts.py``          ``HSTS`` and ``parse_hsts`` (RFC 6797 §6.1), the ``GET /``
``trust.py``         ``Trust``: the one verifying handshake, chain and host name
``result.py``        ``Scan``: everything one scan learned
``scanner.py``       ``scan()``: every step above against one server
``scores.py``        the rating tables: ``PROTOCOL_SCORES``, ``KEY_EXCHANGE_SCORES``,
                     ``CIPHER_SCORES``, ``WEIGHTS``, ``LETTERS``, ``letter_for``
``rules.py``         ``Rule``, ``RULES`` (the caps, T, M and A+), ``rules_table()``
``grading.py``       ``Grade`` and ``grade()``: scores, letter, then the rules
``report.py``        how a ``Scan`` and a ``Grade`` show as HTML in a notebook
===================  =============================================================
"""

from __future__ import annotations

from .attempts import VERSIONS
from .grading import Grade, grade
from .hsts import HSTS, parse_hsts
from .key_exchange import KeyExchange, server_key_shares
from .keys import CertificateFacts
from .result import Scan
from .rules import RULES, Rule, rules_table
from .scanner import scan
from .scores import (
    CIPHER_SCORES,
    KEY_EXCHANGE_SCORES,
    LETTERS,
    PROTOCOL_SCORES,
    WEIGHTS,
    letter_for,
)
from .suites import Suite
from .trust import Trust

# Also importable from here, as they were before the package was split (not in __all__).
from .attempts import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT  # isort: skip
from .scanner import DEFAULT_WORKERS as DEFAULT_WORKERS  # isort: skip

__all__ = [
    "CIPHER_SCORES",
    "HSTS",
    "KEY_EXCHANGE_SCORES",
    "LETTERS",
    "PROTOCOL_SCORES",
    "RULES",
    "VERSIONS",
    "WEIGHTS",
    "CertificateFacts",
    "Grade",
    "KeyExchange",
    "Rule",
    "Scan",
    "Suite",
    "Trust",
    "grade",
    "letter_for",
    "parse_hsts",
    "rules_table",
    "scan",
    "server_key_shares",
]
