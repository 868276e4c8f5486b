"""One lab for a whole room: the teacher shares it, students join it (introduced in notebook 02).

Theory of operation
-------------------
``python -m helpers.lab --bind 0.0.0.0`` already puts the lab's servers on the network,
but a student's machine still cannot use them, for four reasons:

1. **names**: ``expired.lab.localhost`` is a loopback name (RFC 6761 §6.3). On the
   student's machine it means the student's *own* machine; curl and Chromium even
   hard-wire it. Python goes through :mod:`helpers.names`, a process-local hosts table,
   so Python *can* be told "these names live at 10.0.0.5", exactly like adding lines to
   ``/etc/hosts``, but only inside one process and only for lab names;
2. **trust**: the student has no copy of the lab CA certificate;
3. **ports**: the scenario ports are chosen by the teacher's OS;
4. **mutual TLS**: the client certificate and its key are on the teacher's disk.

So the teacher's lab also answers one small plain-HTTP **join endpoint**
(:class:`ShareServer`, port :data:`SHARE_PORT` = 8446 by default, a mnemonic for RFC
8446). ``GET /lab.json`` returns the lab description: the CA certificate, the CRL, the
scenario chains, names and ports, signed by the lab. ``GET /`` is a page for people. On
the student's side :class:`RemoteLab` (what :func:`helpers.lab.join` returns, and what
:func:`helpers.lab.get_lab` returns when
``TLS_COURSE_LAB=http://10.0.0.5:8446/#3F2A9B1C77D0E4A5`` is set) fetches the
description, verifies it, writes the files to a fresh directory in the per-user cache,
and maps every lab name to the address it reached the teacher on. From then on
``lab.url("expired")``, ``lab.ca_bundle`` and ``helpers.diagnose.check`` work as with a
local lab. The one scenario without a name, ``ip-san`` (127.0.0.1), is forwarded from
the student's loopback to the teacher, like ``ssh -L``.

Why plain HTTP is acceptable here, and what is left
---------------------------------------------------
Everything the endpoint serves by default is **public**: a CA *certificate* and the
scenario chains (servers send certificates to anyone who connects), a CRL (published by
design, RFC 5280 §5), host names and port numbers. Encrypting it would hide nothing
worth hiding. What plain HTTP does not give is **authenticity**: someone else in the room
could answer first (ARP spoofing, a rogue access point) with their own CA, and every
student would then trust that CA for lab names. This is *trust on first use*, like the
first ``ssh`` to a new host, and the answer is the same: compare a fingerprint over
another channel. The CLI prints the CA's SHA-256 fingerprint; the teacher writes it on
the board; students put it after ``#`` in the URL
(``join("http://10.0.0.5:8446/#3F2A9B1C77D0E4A5")``, or ``fingerprint=``). Without it
:class:`RemoteLab` refuses to start (``insecure_no_fingerprint=True`` is the loud,
explicit way round); with it, it refuses a CA whose fingerprint does not start with those
digits (at least 16 hex digits, 64 bits).

The CA certificate is public, though, so the pin must reach further than the CA: an
impostor could serve the real CA next to a forged CRL, forged chains and ports of their
choosing. So the lab **signs** each description it serves, with a *description signer*
its root certified at build time (the root key is never kept; see
:mod:`helpers.lab.remote.signing`), and ``join()`` verifies the signer against the
pinned CA and the signature over the exact bytes before it writes anything; it then
checks the CRL, every chain and the client certificate against the CA once more
(:mod:`helpers.lab.remote.material`). Each join writes a fresh directory per CA and
endpoint, so a refused or hostile join never changes files a running kernel uses. The
damage is bounded anyway: the lab CA is trusted only where a student passes
``lab.ca_bundle`` explicitly, and lab names are never looked up outside
:mod:`helpers.names`.

What is never shared
--------------------
* **The CA private key**: the lab never writes it anywhere (see :mod:`helpers.lab.build`).
* **Server keys**: they stay on the teacher's machine. ``lab.files.chains`` works on a
  joined lab (certificates are public); ``lab.files.keys`` raises :class:`LabError`, so
  an exercise that builds its own server from a lab key needs a local lab.
* **The client key**, unless the teacher asks (``--share-client-key``). It is lab-only,
  throw-away material (a new one with every lab build) and opens nothing but this lab's
  ``client-cert-required`` port. Still, it is a private key, and sending private keys
  over cleartext HTTP is the habit this course exists to break; so by default it stays
  home and the mTLS cells only work on the teacher's screen. A teacher who wants every
  student to try mutual TLS turns it on for the lesson, knowingly, and the CLI says so.

Where things are, in reading order
----------------------------------
Everything below is importable from ``helpers.lab.remote`` itself; ``join()`` and
``get_lab()`` are in :mod:`helpers.lab` (``helpers/lab/__init__.py``).

==================  ==============================================================
``description.py``  what travels: the lab description's JSON shape, ``SHARE_PORT``,
                    ``FORMAT``, ``LAB_ENV``, and what a student takes from it
``fingerprint.py``  ``ca_fingerprint()``, ``short_fingerprint()``, and the check of
                    what a student typed (trust on first use)
``addresses.py``    ``local_addresses()``: what students should type; how URLs
                    write an address
``share.py``        the teacher's side: ``ShareServer``, the join endpoint, the
                    description it serves and the page for people
``signing.py``      the signed envelope: ``DescriptionSigner`` (teacher) and
                    ``open_envelope()`` (student: fingerprint, signer, signature)
``joining.py``      the student's first step: the join URL, the GET of the description
                    within one deadline
``material.py``     defence in depth: CRL, chains, client certificate checked against
                    the pinned CA
``files.py``        ``JoinedFiles``: a fresh directory per join, written atomically,
                    pruned when no kernel holds it
``forward.py``      the loopback port forward for ``ip-san`` (like ``ssh -L``)
``joined.py``       ``RemoteLab``: the joined lab, the same accessors as ``Lab``
==================  ==============================================================
"""

from __future__ import annotations

from .addresses import local_addresses
from .description import FORMAT, LAB_ENV, SHARE_PORT
from .files import JoinedFiles
from .fingerprint import ca_fingerprint, short_fingerprint
from .joined import RemoteLab
from .share import ShareServer

# Also importable from here, as they were before the package was split (not in __all__).
from .description import KIND as KIND  # isort: skip
from .description import MAX_DESCRIPTION as MAX_DESCRIPTION  # isort: skip
from .fingerprint import MIN_FINGERPRINT_HEX as MIN_FINGERPRINT_HEX  # isort: skip
from .joining import JOIN_TIMEOUT as JOIN_TIMEOUT  # isort: skip

__all__ = [
    "FORMAT",
    "LAB_ENV",
    "SHARE_PORT",
    "JoinedFiles",
    "RemoteLab",
    "ShareServer",
    "ca_fingerprint",
    "local_addresses",
    "short_fingerprint",
]
