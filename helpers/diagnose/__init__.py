"""What went wrong with this TLS connection, in plain English (introduced in notebook 02).

Theory of operation
-------------------
A client that opens ``https://host:port/`` climbs a ladder, and every rung can break:

====  ==============================  ===========================================  ==================
rung  what happens                    what breaks                                  kind
====  ==============================  ===========================================  ==================
1     the name becomes an address     no such name, no network                     ``dns``
2     a TCP connection opens          nothing listens, a firewall drops packets    ``refused``,
                                                                                   ``timeout``
3     TLS records are exchanged       the port speaks something else (HTTP)        ``not-tls``
4     the handshake agrees on         no common version, weak parameters,          ``protocol-version``,
      version, cipher and keys        the server wants a client certificate        ``weak-dh``, ...
      (RFC 8446 §4)
5     the certificate chain is        expired, unknown issuer, revoked, weak       ``expired``,
      validated (RFC 5280 §6.1)                                                    ``untrusted-root``, ...
6     the name is matched             the certificate is for another name          ``hostname-mismatch``
      (RFC 9525 §6, RFC 9110 §4.3.4)
====  ==============================  ===========================================  ==================

Python reports each break as an exception, and ``requests`` wraps that exception two or
three times before you see it. :func:`explain` walks that chain, finds the most specific
exception in it and looks up a short **kind** (``"expired"``) in :data:`ADVICE`, one
table of plain-English explanations and fixes that you can read on its own.
:func:`check` makes a connection itself, with :mod:`ssl` or with ``requests``, and
returns the same :class:`Diagnosis` plus what it saw on the way: the TLS version, the
cipher suite and the certificates the server sent. :func:`atlas` runs every lab scenario
through both clients and tabulates what each one raised: the "exception atlas" of
notebook 02.

Two details are told next to their code: verification happens inside the handshake, so
the certificates of a failed check are read by a separate probe (``server_chain``), and a
check is the verdict of one client's policy, not of the certificate (``connect``).

:func:`check` never raises for a network or TLS failure: it returns a failed
:class:`Diagnosis`. Mistakes in the call itself (a malformed URL, a CA file that does
not exist) raise :class:`~helpers.errors.UsageError`.

The files, in reading order
---------------------------
================  ==================================================================
``advice``        :data:`ADVICE`: every kind of failure, what it means, how to fix it
``unwrap``        :func:`exception_chain`: the exceptions inside the one you caught
``reasons``       what OpenSSL and the OS call each failure, mapped to a kind
``classify``      which exception in the chain decides the kind; :func:`explain`
``result``        :class:`Diagnosis`: the verdict, and what the chain showed
``card``          a :class:`Diagnosis` as an HTML card
``target``        what :func:`check` connects to: URL, names never looked up, lab hosts
``context``       :func:`check`'s options and the verifying :class:`ssl.SSLContext`
``server_chain``  the certificates the server sent, and the one non-verifying probe
``connect``       :func:`check`: one connection through ``ssl`` or ``requests``
``survey``        :func:`atlas`: every lab scenario through every client
================  ==================================================================
"""

from __future__ import annotations

from .advice import ADVICE, Advice
from .classify import explain
from .connect import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .connect import check

# Names with a leading underscore stay private; tests read them (the classification
# tables, a certificate reader).
from .reasons import _PHRASES as _PHRASES
from .reasons import _REASONS as _REASONS
from .reasons import _VERIFY_CODES as _VERIFY_CODES
from .reasons import _VERIFY_MESSAGES as _VERIFY_MESSAGES
from .result import Diagnosis
from .result import _san as _san
from .survey import Atlas, AtlasRow, atlas
from .unwrap import exception_chain

__all__ = [
    "ADVICE",
    "Advice",
    "Atlas",
    "AtlasRow",
    "Diagnosis",
    "atlas",
    "check",
    "exception_chain",
    "explain",
]
