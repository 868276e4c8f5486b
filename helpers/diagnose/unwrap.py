"""The exceptions inside the one you caught: :func:`exception_chain` (notebook 02).

Python reports a failed connection as an exception, and ``requests`` wraps that exception
two or three times before you see it::

    requests.exceptions.SSLError            <- what your ``except`` catches
      .args[0]  urllib3 MaxRetryError       <- "Max retries exceeded ..."
        .reason urllib3 SSLError
          ssl.SSLCertVerificationError      <- the real answer: .verify_code == 10

The answer is at the bottom, so :func:`exception_chain` follows every place a library
keeps the exception it wraps and lists them all, outermost first; :mod:`.classify` then
decides which one says the most. Notebook 02 prints the chain of a real failure.

The other clients of notebook 09 wrap it their own way, and the same four places cover
them (measured with httpx 0.28.1 / httpcore 1.0.9 and aiohttp 3.14.5)::

    httpx.ConnectError
      httpcore.ConnectError                 <- its __cause__ (raise ... from exc)
        ssl.SSLCertVerificationError        <- in .args (raised "from None", so
                                               __context__ is suppressed)

    aiohttp ClientConnectorCertificateError <- itself an SSLCertVerificationError,
      ssl.SSLCertVerificationError             without verify_code; the real one in .args
"""

from __future__ import annotations


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps, outermost first.

    Libraries keep the original exception in four places, and we follow all of them:
    ``__cause__`` (``raise X from e``), ``__context__`` (raised while handling ``e``),
    ``.reason`` (urllib3's ``MaxRetryError`` and ``NewConnectionError``) and ``.args``
    (``requests.exceptions.SSLError(MaxRetryError(...))``). Each exception appears once.
    """
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if any(item is s for s in seen):
            continue
        seen.append(item)
        reason = getattr(item, "reason", None)
        # __context__ only when Python itself would print it ("During handling of ...").
        context = None if item.__suppress_context__ else item.__context__
        for nxt in (item.__cause__, reason, *getattr(item, "args", ()), context):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def _qualname(exc: BaseException) -> str:
    """``ssl.SSLCertVerificationError``, ``requests.exceptions.SSLError``, ``TimeoutError``."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    if module == "_ssl":
        module = "ssl"
    return f"{module}.{cls.__qualname__}"
