"""ACME (RFC 8555) on loopback: how certificates renew themselves (introduced in notebook 10).

Theory of operation
-------------------
ACME automates what a person used to do by hand with a CA. The client holds an
**account key**; every request is a JWS signed with it (``jws.py``), carrying a
single-use **nonce** and the URL it targets, so a captured request cannot be replayed.
The flow, starting from one published URL (the **directory**):

1. ``newAccount``: register the account key; the answer's Location is the account URL.
2. ``newOrder``: "I want a certificate for these names" -> one **authorization** per name.
3. Each authorization offers **challenges**; with HTTP-01 the client serves
   ``token.thumbprint(account key)`` at ``http://NAME/.well-known/acme-challenge/TOKEN``
   and the CA fetches it: proof that whoever controls the name holds the account key.
4. ``finalize``: a CSR for a *new* key with exactly the order's names; the CA signs it.
5. Download the chain; later renew when the CA suggests (ARI, ``ari.py``), or revoke.
Errors are problem documents (``problems.py``) with a type a program can act on.

Modules: ``problems.py`` (AcmeProblem), ``jws.py`` (JWS, JWK, thumbprints),
``ari.py`` (renewal windows, CertID), ``ca.py`` (the CA's protocol logic, sans-IO),
``server.py`` (AcmeServer: HTTPS transport and HTTP-01 validation), ``client.py`` and
``http01.py`` (the client side), ``renewal.py`` (when to renew, renewing under load)
and ``hotswap.py`` (a server that swaps its certificate without dropping a
connection). Nothing happens at import time; import the modules you need.
"""
