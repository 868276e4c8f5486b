"""When ``cryptography``'s Rust code panics, say so in one sentence (notebook 04).

``cryptography`` parses keys and certificates in Rust (through PyO3). A Rust *panic*
(a failed internal assertion: a bug, not a bad-input error) reaches Python as
``pyo3_runtime.PanicException``, which derives from :class:`BaseException`, not
:class:`Exception`, exactly like :class:`KeyboardInterrupt`. So ``except Exception``
does not catch it, and a notebook cell shows a Rust backtrace instead of an answer.
cryptography 50.0.2 panics this way on a traditional encrypted PEM key whose
``DEK-Info`` IV is 8-15 bytes long for an AES cipher
(:func:`helpers.pki.loading.load_private_key` checks that before calling it).

The exception class cannot simply be imported: ``pyo3_runtime`` is not a module on
disk, and each Rust extension creates its own ``PanicException`` class the first time
it panics. So :func:`is_rust_panic` recognises it by name and module, and
:func:`panics_as` turns it into a :class:`~helpers.errors.CourseError` around any
call that hands user bytes to ``cryptography`` (:func:`converts_panics` does the
same for a whole function). Everything else (KeyboardInterrupt,
SystemExit, ordinary exceptions) passes through untouched.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from ..errors import CourseError

__all__ = ["converts_panics", "is_rust_panic", "panics_as"]

P = ParamSpec("P")
R = TypeVar("R")


def is_rust_panic(exc: BaseException) -> bool:
    """True for PyO3's ``pyo3_runtime.PanicException`` (a Rust panic inside an extension)."""
    kind = type(exc)
    return (
        not isinstance(exc, Exception)
        and kind.__name__ == "PanicException"
        and kind.__module__ == "pyo3_runtime"
    )


@contextlib.contextmanager
def panics_as(error: type[CourseError], what: str, hint: str) -> Iterator[None]:
    """Inside the block, a Rust panic becomes ``error(what + reason, hint)``.

    >>> with panics_as(PEMError, "The key could not be read", "Check the file."):  # doctest: +SKIP
    ...     serialization.load_pem_private_key(data, password)
    """
    try:
        yield
    except BaseException as exc:
        if not is_rust_panic(exc):
            raise
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "no message"
        raise error(
            f"{what.rstrip('.')} (cryptography's Rust code panicked: {reason}).", hint
        ) from None


def converts_panics(
    error: type[CourseError], what: str, hint: str
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: :func:`panics_as` around the whole function.

    A panic is a ``BaseException``, so it passes every ``except ValueError`` inside the
    function untouched and is turned into ``error`` only on the way out.
    """

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            with panics_as(error, what, hint):
                return function(*args, **kwargs)

        return call

    return wrap
