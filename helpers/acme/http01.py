"""The client's half of an HTTP-01 challenge: a tiny web server for one file per token (notebook 10).

An ACME server will not sign a certificate for a name until the client proves that it
controls that name. With the HTTP-01 challenge (RFC 8555 §8.3) the proof is a file:

    The path at which the resource is provisioned is comprised of the fixed prefix
    "/.well-known/acme-challenge/", followed by the "token" value in the challenge.
    The value of the resource MUST be the ASCII representation of the key
    authorization.                                                 -- RFC 8555 §8.3

The CA then fetches ``http://NAME/.well-known/acme-challenge/TOKEN`` itself, over plain
HTTP, from wherever NAME resolves, and compares the body with the key authorization it
computed: ``token || "." || base64url(JWK thumbprint of the account key)`` (§8.1,
:func:`helpers.acme.jws.key_authorization`). Only someone who runs the web server for
NAME *and* holds the account key can make the two match.

Theory of operation
-------------------
:class:`Http01Responder` is an :class:`~helpers.servers.HTTPService` (the same life
cycle, caps and deadlines as the login site of notebook 01, in
:mod:`helpers.servers`): one thread accepts, each connection gets a thread, every read
has an idle timeout and every request an absolute deadline, at most
:attr:`Http01Responder.max_connections` connections at once, and ``stop()`` hangs up
on every open connection. It listens on 127.0.0.1 by default (port 0: the OS picks);
a real deployment answers on port 80 of the name's public address, which is why the
lab's ACME server and Pebble let the port be configured.

It answers exactly one kind of request: ``GET /.well-known/acme-challenge/TOKEN`` for
a token you :meth:`~Http01Responder.add`-ed, with the key authorization as the body.
Everything else gets 404 Not Found: an HTTP-01 responder is not a web server, and a
responder that echoed any token it was asked for would let anyone with the account's
thumbprint pass the challenge (§8.3 warns against copying tokens from requests).
Each answer is recorded in :attr:`~Http01Responder.log`, and
:meth:`~Http01Responder.wait_until_fetched` lets a client follow §7.5.1's advice to
"not begin polling until it has seen the validation request from the server".

The ``Content-Type`` is ``application/octet-stream``, as in RFC 8555 §8.3's example
response; the RFC asks nothing else of the headers, and CAs read only the body
("The server SHOULD ignore whitespace characters at the end of the body").
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from ..errors import UsageError
from ..servers import HTTPService, QuietHandler

__all__ = ["CHALLENGE_PREFIX", "Http01Responder"]

#: RFC 8555 §8.3: "the fixed prefix".
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"

# §8.3: the token "MUST NOT contain any characters outside the base64url alphabet and
# MUST NOT include base64 padding characters"; a thumbprint is base64url too (§8.1).
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class Http01Responder(HTTPService):
    """Serves ``GET /.well-known/acme-challenge/TOKEN`` for the tokens you add (RFC 8555 §8.3).

    >>> with Http01Responder() as responder:            # 127.0.0.1, a free port
    ...     responder.add(token, jws.key_authorization(token, account_key))
    ...     ...  # tell the CA the challenge is ready; it fetches the file
    ...     responder.remove(token)                     # §8.3: de-provision afterwards

    ``host`` other than loopback needs ``allow_network=True`` (see
    :func:`helpers.servers.require_loopback_bind`). Introduced in notebook 10; used by
    :class:`helpers.acme.client.AcmeClient`.
    """

    #: Seconds a connection may stay silent (each read): a CA asks at once.
    idle_timeout = 5.0
    #: Seconds a whole request may take to arrive.
    request_deadline = 10.0
    #: Connections served at once (a CA validates from a few places, not hundreds).
    max_connections = 32
    #: Tokens provisioned at once: a client answers one challenge per name.
    max_tokens = 256
    #: Longest token accepted (§8.3 asks for at least 128 bits: 22 characters).
    max_token_length = 128

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, allow_network: bool = False
    ) -> None:
        super().__init__(tls=None, host=host, port=port, allow_network=allow_network)
        self._answers: dict[str, str] = {}
        self._fetched: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        #: One line per request: who asked for what and the status sent (the last 200).
        self.log: deque[str] = deque(maxlen=200)

    # -- what the client provisions ---------------------------------------------------

    def add(self, token: str, key_authorization: str) -> None:
        """Provision ``key_authorization`` at ``/.well-known/acme-challenge/<token>``.

        Both are checked: the token is base64url (§8.3), and the key authorization is
        ``token + "." + thumbprint`` for *this* token (§8.1), so a mixed-up pair fails
        here, in one sentence, instead of as an "unauthorized" problem from the CA.
        """
        if not isinstance(token, str) or not _B64URL.fullmatch(token):
            raise UsageError(
                f"{token!r} is not an ACME token: a token is base64url text (RFC 8555 §8.3).",
                "Pass the challenge's 'token' field unchanged.",
            )
        if len(token) > self.max_token_length:
            raise UsageError(
                f"A token of {len(token)} characters is longer than this responder accepts "
                f"({self.max_token_length}).",
                "Pass the challenge's 'token' field unchanged.",
            )
        prefix, dot, thumbprint = str(key_authorization).partition(".")
        if prefix != token or not dot or not _B64URL.fullmatch(thumbprint):
            raise UsageError(
                "The key authorization does not belong to this token: it must be "
                "token + '.' + the account key's thumbprint (RFC 8555 §8.1).",
                "Compute it with helpers.acme.jws.key_authorization(token, account_key).",
            )
        with self._lock:
            if token not in self._answers and len(self._answers) >= self.max_tokens:
                raise UsageError(
                    f"This responder already holds {self.max_tokens} tokens.",
                    "remove() each token once its challenge is valid or invalid (§8.3).",
                )
            self._answers[token] = key_authorization
            self._fetched.setdefault(token, threading.Event())

    def remove(self, token: str) -> None:
        """Stop serving ``token`` (RFC 8555 §8.3: "The client SHOULD de-provision the
        resource ... once the challenge is complete"). Unknown tokens are ignored."""
        with self._lock:
            self._answers.pop(token, None)
            self._fetched.pop(token, None)

    @property
    def tokens(self) -> list[str]:
        """The tokens being served now."""
        with self._lock:
            return list(self._answers)

    def wait_until_fetched(self, token: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the CA to fetch ``token``; True once it has.

        RFC 8555 §7.5.1: "the client SHOULD NOT begin polling until it has seen the
        validation request from the server".
        """
        with self._lock:
            event = self._fetched.get(token)
        return event is not None and event.wait(max(timeout, 0.0))

    # -- the server -------------------------------------------------------------------

    def _answer(self, path: str) -> str | None:
        """The key authorization for a request path, or None (then: 404)."""
        if not path.startswith(CHALLENGE_PREFIX):
            return None
        token = path[len(CHALLENGE_PREFIX) :]
        with self._lock:
            answer = self._answers.get(token)
            if answer is not None:
                self._fetched[token].set()
        return answer

    def handler(self) -> type[BaseHTTPRequestHandler]:
        responder = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                answer = responder._answer(self.path)
                peer = self.client_address[0]
                host = self.headers.get("Host", "")
                if answer is None:
                    status = HTTPStatus.NOT_FOUND
                    self.reply(status, b"No such challenge here.\n", "text/plain; charset=utf-8")
                else:
                    status = HTTPStatus.OK
                    self.reply(status, answer.encode("ascii"), "application/octet-stream")
                responder.log.append(
                    f"{time.strftime('%H:%M:%S')} {peer} GET {self.path[:120]} "
                    f"(Host: {host[:80]}) -> {status.value}"
                )

        return Handler

    def __repr__(self) -> str:
        state = f"http://{self.address[0]}:{self.port}/" if self.running else "stopped"
        return f"<Http01Responder {state}, {len(self.tokens)} token(s)>"
