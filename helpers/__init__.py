"""Helpers for the hands-on course *TLS in Python*.

Every module here is part of the lesson: open it and read it. Each one says which
notebook introduces it. Importing ``helpers`` has no side effects: nothing listens,
nothing is written, nothing is patched until you call something.

Modules, in the order the series meets them:

==================  ==========================================================  ========
module              what it holds                                               notebook
==================  ==========================================================  ========
``errors``          the course's exceptions: one readable sentence each          00
``live``            the one switch for cells that talk to real internet hosts   00
``netguard``        the offline guard used by the tests (loopback only)         00
``exercises``       ``check()`` / ``hint()`` for every exercise                  01
``pki``             a private certificate authority built on ``cryptography``   02, 04
``cards``           HTML cards that display certificates like a browser does    03
``names``           ``*.lab.localhost`` names resolved to loopback (like hosts) 02
``lab``             badssl.com-style broken servers on 127.0.0.1                 02
``diagnose``        ``check(url)``: what went wrong, in plain English             02
``handshake``       capture and decode TLS records and handshake messages       06
``tls13``           decrypt a TLS 1.3 handshake from a key log                  06
``plots``           handshake diagrams and certificate-expiry timelines         01, 03
==================  ==========================================================  ========
"""

__version__ = "0.1.0"
