"""Exercises: ``check()``, ``hint()`` and solutions kept apart (introduced in notebook 01).

How an exercise works
---------------------
Every notebook ends with at least two exercises. Each one asks you to write a
small function, then calls its checker::

    from helpers.exercises import nb02
    def verify_code_of(url): ...            # your answer
    nb02.verify_code_of.check(verify_code_of)   # ✓ or ✗ with the reason
    nb02.verify_code_of.hint()                  # the next hint, one at a time

A check *really* tests your answer: it calls your function, usually against the
local lab's servers, and compares with what TLS actually did. It never raises:
an unfinished answer (``raise NotImplementedError``) shows as "not attempted yet",
a wrong one as ✗ with the reason, so "Run all" always reaches the end.

Where the solutions are
-----------------------
``notebooks/solutions/`` holds one notebook per lesson with the same exercise
cells, solved between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers
(the nbgrader convention). Each exercise cell carries the tag
``exercise:nbNN.name`` in both notebooks; a test runs every checker against the
student's stub (it must fail) and against the solution (it must pass).

Writing checks (for contributors)
---------------------------------
A checker is a function ``(answer) -> None`` that raises ``AssertionError`` with a
sentence for the learner when the answer is wrong. Register it with
:func:`exercise`, naming the parameters the learner's function must take::

    @exercise("nb02", params=("url",), hints=["Start with requests.get(...)", "Look at e.__context__"])
    def verify_code_of(answer):
        assert answer(lab.url("expired")) == 10, "expired should give 10"

What the framework does for every checker, so checkers need not repeat it:

* the learner's function is called through :class:`_Answer`, which checks each call
  against the function's signature first. A wrong signature is reported as "your
  function must take (url)" (with ``params=``; otherwise with the arguments the check
  passed), never as "the check could not run";
* when a check fails and the learner's last call returned ``None``, the message
  starts with "your function returned None:" (a forgotten ``return``, most often),
  unless the exercise is declared with ``returns_none=True``: a function that writes a
  file or configures something returns ``None`` by design, and the prefix would blame
  the wrong thing;
* ``hint()`` past the last hint says so, and where the solution is.

A check must also refuse answers that *work* but are unsafe (swallowed errors, no
forward secrecy, races): give a case where the unsafe answer behaves differently, and
say in the message why it is unsafe.
"""

from __future__ import annotations

import html
import inspect
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Checker = Callable[[Any], None]

#: Every registered exercise, keyed by ``"nbNN.name"``.
REGISTRY: dict[str, Exercise] = {}


@dataclass
class CheckResult:
    """What :meth:`Exercise.check` found. ``passed`` is True only for a correct answer."""

    exercise: str
    passed: bool
    attempted: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{self._symbol} {self.exercise}: {self.message}"

    @property
    def _symbol(self) -> str:
        if self.passed:
            return "✓"
        return "✗" if self.attempted else "…"

    def _repr_html_(self) -> str:
        if self.passed:
            colour, bg = "#1a7f37", "#e9f7ee"
        elif self.attempted:
            colour, bg = "#b3261e", "#fdecea"
        else:
            colour, bg = "#6b5d00", "#fff8d6"
        return (
            f'<div style="border-left:5px solid {colour};background:{bg};color:#1b1b1b;'
            f'padding:6px 10px;margin:4px 0;font-family:sans-serif">'
            f"<b>{self._symbol} {html.escape(self.exercise)}</b> — {html.escape(self.message)}</div>"
        )


@dataclass
class Hint:
    """One hint. ``after_last`` is set when ``hint()`` is called again after the last one."""

    exercise: str
    number: int
    total: int
    text: str
    after_last: str = ""

    @property
    def _title(self) -> str:
        return f"Hint {self.number}/{self.total}"

    def __repr__(self) -> str:
        extra = f" {self.after_last}" if self.after_last else ""
        return f"{self._title} for {self.exercise}: {self.text}{extra}"

    def _repr_html_(self) -> str:
        extra = f"<br><i>{html.escape(self.after_last)}</i>" if self.after_last else ""
        return (
            '<div style="border-left:5px solid #0b5cad;background:#eaf2fb;color:#1b1b1b;'
            'padding:6px 10px;margin:4px 0;font-family:sans-serif">'
            f"<b>{self._title}</b> ({html.escape(self.exercise)}): "
            f"{html.escape(self.text)}{extra}</div>"
        )


class _Answer:
    """The learner's function, as the checker sees it: each call is checked and recorded.

    Before each call the arguments are bound to the function's signature
    (:func:`inspect.signature`), so a function that takes the wrong parameters is
    reported as such instead of crashing inside the checker with a ``TypeError``. The
    value of the last call is kept, to say "your function returned None" when a check
    fails after it. Everything else (``__name__``, ``__doc__``) is the function's own.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.__wrapped__ = function
        self.calls = 0
        self.last_result: Any = _NOT_CALLED
        self.signature_error: str | None = None
        try:
            self._signature: inspect.Signature | None = inspect.signature(function)
        except (TypeError, ValueError):  # some builtins have no signature: just call them
            self._signature = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                self.signature_error = self.signature_error or str(exc)
                raise _WrongSignature(str(exc)) from None
        self.calls += 1
        self.last_result = _NOT_CALLED
        result = self.__wrapped__(*args, **kwargs)
        self.last_result = result
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped__, name)

    @property
    def parameters(self) -> str:
        """``"(address, server_hostname, cafile)"``: what the learner's function takes."""
        if self._signature is None:
            return "(?)"
        return "(" + ", ".join(self._signature.parameters) + ")"


class _NotCalled:
    def __repr__(self) -> str:
        return "<not called>"


_NOT_CALLED = _NotCalled()


class _WrongSignature(TypeError):
    """The learner's function cannot take the arguments the check passes."""


@dataclass
class Exercise:
    """One exercise: a name, a checker, and hints revealed one at a time."""

    notebook: str
    name: str
    checker: Checker
    hints: list[str] = field(default_factory=list)
    #: The parameters the learner's function must take, as in the stub: ``("text",)``.
    params: tuple[str, ...] | None = None
    #: True when the learner's function returns None by design (it writes a file, ...):
    #: then a failure is never blamed on a forgotten ``return``.
    returns_none: bool = False
    _hints_shown: int = 0

    @property
    def key(self) -> str:
        return f"{self.notebook}.{self.name}"

    def check(self, answer: Any) -> CheckResult:
        """Run the checker on ``answer``; never raises."""
        if not callable(answer):
            return CheckResult(
                self.key,
                False,
                True,
                f"pass your function itself, as in check({self.name}), not "
                f"{_short(answer)} (a {type(answer).__name__}).",
            )
        wrapped = _Answer(answer)
        if self.params is not None and wrapped._signature is not None:
            try:
                wrapped._signature.bind(*self.params)
            except TypeError:
                return self._wrong_signature(wrapped)
        try:
            self.checker(wrapped)
        except NotImplementedError:
            return CheckResult(
                self.key,
                False,
                False,
                "not attempted yet: replace the `raise NotImplementedError`.",
            )
        except AssertionError as exc:
            if wrapped.signature_error:
                return self._wrong_signature(wrapped)
            return CheckResult(self.key, False, True, self._about_none(wrapped, str(exc)))
        except Exception as exc:
            if wrapped.signature_error:
                return self._wrong_signature(wrapped)
            mine = _learner_frames(exc, checker_file=self.checker.__code__.co_filename)
            if mine:  # the learner's code crashed: say where, briefly
                return CheckResult(
                    self.key,
                    False,
                    True,
                    f"your code raised {type(exc).__name__}: {exc} (line {mine[-1].lineno}).",
                )
            if wrapped.last_result is None and not self.returns_none:  # it choked on a None
                return CheckResult(
                    self.key,
                    False,
                    True,
                    "your function returned None: did you forget the `return` statement? "
                    f"(the check then failed with {type(exc).__name__}: {exc})",
                )
            return CheckResult(  # the check itself could not run (a lab down, a missing tool)
                self.key,
                False,
                True,
                f"the check could not run: {type(exc).__name__}: {exc}",
            )
        return CheckResult(self.key, True, True, "correct, well done!")

    def _wrong_signature(self, wrapped: _Answer) -> CheckResult:
        name = getattr(wrapped.__wrapped__, "__name__", "your function")
        params = self.params if self.params is not None else self.stub_params()
        if params is not None:
            want = "(" + ", ".join(params) + ")"
            message = f"your function must take {want}, like the stub; {name}{wrapped.parameters} does not."
        else:
            message = (
                f"your function must take the parameters of the stub; {name}{wrapped.parameters} "
                f"cannot be called the way the check calls it ({wrapped.signature_error})."
            )
        return CheckResult(self.key, False, True, message)

    def _about_none(self, wrapped: _Answer, message: str) -> str:
        message = message or "not quite, try again."
        if self.returns_none:  # None is the expected result: the message says what is wrong
            return message
        if wrapped.last_result is None and not message.startswith("your function returned None"):
            return f"your function returned None: {message}"
        return message

    def hint(self, number: int | None = None) -> Hint:
        """Show the next hint (or hint ``number``, counting from 1).

        Called again after the last hint, it shows the last one once more and says
        that there are no more, and where the solution is.
        """
        if not self.hints:
            return Hint(self.key, 0, 0, "no hints for this one: read the exercise text again.")
        after_last = ""
        if number is None:
            if self._hints_shown >= len(self.hints):
                after_last = (
                    f"That was the last hint. The solution is in {self.solution_path}, "
                    f"in the cell tagged exercise:{self.key}: try once more before you look!"
                )
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            number = self._hints_shown
        number = max(1, min(number, len(self.hints)))
        return Hint(self.key, number, len(self.hints), self.hints[number - 1], after_last)

    def stub_params(self) -> tuple[str, ...] | None:
        """The parameters of the stub in the lesson notebook (the cell tagged ``exercise:<key>``).

        Used when the checker did not declare ``params=``: the stub is the specification.
        None if the notebook or the stub cannot be found (an installed copy without notebooks).
        """
        import ast
        import json

        folder = Path(__file__).resolve().parent.parent.parent / "notebooks"
        number = self.notebook.removeprefix("nb")
        for path in sorted(folder.glob(f"{number}_*.ipynb")):
            try:
                cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            except (OSError, ValueError, KeyError):
                continue
            for cell in cells:
                if f"exercise:{self.key}" not in cell.get("metadata", {}).get("tags", []):
                    continue
                source = (
                    cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                )
                try:
                    tree = ast.parse(source)
                except SyntaxError:
                    return None
                for node in ast.walk(tree):
                    if isinstance(node, ast.FunctionDef) and node.name == self.name:
                        args = node.args
                        return tuple(
                            a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
                        )
        return None

    @property
    def solution_path(self) -> str:
        """Where the solved exercise is: ``notebooks/solutions/01_tls_concepts.ipynb``."""
        folder = Path(__file__).resolve().parent.parent.parent / "notebooks" / "solutions"
        number = self.notebook.removeprefix("nb")
        found = sorted(folder.glob(f"{number}_*.ipynb"))
        name = found[0].name if found else f"{number}_*.ipynb"
        return f"notebooks/solutions/{name}"

    def __call__(self, answer: Any) -> CheckResult:
        return self.check(answer)


_LIBRARY_DIRS = tuple(
    str(Path(p).resolve())
    for p in {
        Path(__file__).resolve().parent.parent,  # the helpers package
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    }
)


def _learner_frames(exc: BaseException, checker_file: str) -> list[traceback.FrameSummary]:
    """The frames of ``exc``'s traceback that run the learner's code, not ours or a library's."""
    return [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename != checker_file
        and not str(Path(frame.filename).resolve()).startswith(_LIBRARY_DIRS)
    ]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exercise(
    notebook: str,
    *,
    hints: list[str] | None = None,
    params: tuple[str, ...] | None = None,
    returns_none: bool = False,
) -> Callable[[Checker], Exercise]:
    """Decorator that turns a checker function into a registered :class:`Exercise`.

    ``params`` names the parameters of the learner's function, as in the stub; with
    it, a wrong signature is reported as "your function must take (...)".
    ``returns_none=True`` says the learner's function returns ``None`` by design (its
    stub says ``-> None``): failures then never start with "your function returned None".
    """

    def register(checker: Checker) -> Exercise:
        ex = Exercise(notebook, checker.__name__, checker, list(hints or []), params, returns_none)
        REGISTRY[ex.key] = ex
        return ex

    return register


def get(key: str) -> Exercise:
    """Look up ``"nbNN.name"``, importing ``helpers.exercises.nbNN`` on first use."""
    if key not in REGISTRY:
        import importlib

        importlib.import_module(f"{__name__}.{key.split('.', 1)[0]}")
    return REGISTRY[key]
