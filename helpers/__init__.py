"""Helpers for the hands-on course *TLS in Python*.

Every module here is part of the lesson: open it and read it. Each one says which
notebook introduces it. Importing ``helpers`` has no side effects: nothing listens,
nothing is written, nothing is patched until you call something.

Modules, in the order the series meets them:

=================  ==============================================================  ========
module             what it holds                                                   notebook
=================  ==============================================================  ========
``errors``         the course's exceptions: one readable sentence each              00
``live``           the one switch for cells that talk to real internet hosts       00
``environment``    which Python, which OpenSSL (two of them), which packages       00
``versions``       what changed, version by version, measured here; the "on your   00
                   Python ..." notes later notebooks print
``netguard``       the offline guard used by the tests (loopback only)             00
``exercises``      ``check()`` / ``hint()`` for every exercise                      00
``servers``        a tiny login site over HTTP or HTTPS                            01
``serving``        what every small server shares: caps, deadlines, hang-ups       01, 09
``capture``        record a connection's bytes: in memory, or through a relay      01
``timing``         handshake round trips measured through a delaying relay         01
``names``          ``*.lab.localhost`` names answered like /etc/hosts would        02
``lab``            badssl.com-style broken servers on 127.0.0.1; ``lab.remote``:    02
                   a teacher's lab shared with a room; ``lab.legacy``: what a
                   client decides about TLS 1.0/1.1 servers on this machine;
                   ``lab.wheel``: the package index pip and uv install from (09);
                   ``lab.tls12_legacy``: a TLS 1.2 server without RFC 5746 (09)
                   ``lab.proxy``: a CONNECT tunnel and a TLS-inspecting proxy (09)
                   ``lab.truncating``: a server that hangs up without close_notify (09)
``diagnose``       ``check(url)`` and ``explain(error)``: what went wrong           02
``cards``          certificates and tables as HTML cards                           03
``fetch``          the certificates of many hosts at once                          03
``plots``          handshake diagrams and certificate-expiry timelines             01, 03
``pki``            a private certificate authority built on ``cryptography``       04
``handshake``      sans-IO decoding of TLS records and handshake messages          06
``tls13``          decrypt a TLS 1.3 connection from a key log                     06
``mitm``           a man in the middle on loopback, and certificate pinning        07
``probe``          which versions and ciphers a server accepts, and a grade        08
``ocsp``           an OCSP responder on loopback and a client that asks it         08
``clients``        requests, urllib, httpx, aiohttp, truststore, curl, pip, uv     09
                   run for real; "which tool reads what" table
``doctor``         ``python -m helpers.doctor [URL]``: this machine's TLS setup,   00, 09
                   every TLS variable checked, findings with their fix
``acme``           ACME (RFC 8555) on loopback: the lab's ACME CA, a client,      10
                   HTTP-01, renewal information (RFC 9773), renewing under load
=================  ==============================================================  ========
"""

__version__ = "0.1.0"
