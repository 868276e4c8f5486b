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
:func:`exercise`::

    @exercise("nb02", hints=["Start with requests.get(...)", "Look at e.__context__"])
    def verify_code_of(answer):
        assert answer(lab.url("expired")) == 10, "expired should give 10"
"""

from __future__ import annotations

import html
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
    exercise: str
    number: int
    total: int
    text: str

    def __repr__(self) -> str:
        return f"Hint {self.number}/{self.total} for {self.exercise}: {self.text}"

    def _repr_html_(self) -> str:
        return (
            '<div style="border-left:5px solid #0b5cad;background:#eaf2fb;color:#1b1b1b;'
            'padding:6px 10px;margin:4px 0;font-family:sans-serif">'
            f"<b>Hint {self.number}/{self.total}</b> ({html.escape(self.exercise)}): "
            f"{html.escape(self.text)}</div>"
        )


@dataclass
class Exercise:
    """One exercise: a name, a checker, and hints revealed one at a time."""

    notebook: str
    name: str
    checker: Checker
    hints: list[str] = field(default_factory=list)
    _hints_shown: int = 0

    @property
    def key(self) -> str:
        return f"{self.notebook}.{self.name}"

    def check(self, answer: Any) -> CheckResult:
        """Run the checker on ``answer``; never raises."""
        try:
            self.checker(answer)
        except NotImplementedError:
            return CheckResult(
                self.key, False, False, "not attempted yet: replace the `raise NotImplementedError`."
            )
        except AssertionError as exc:
            return CheckResult(self.key, False, True, str(exc) or "not quite, try again.")
        except Exception as exc:
            mine = _learner_frames(exc, checker_file=self.checker.__code__.co_filename)
            if mine:  # the learner's code crashed: say where, briefly
                return CheckResult(
                    self.key,
                    False,
                    True,
                    f"your code raised {type(exc).__name__}: {exc} (line {mine[-1].lineno}).",
                )
            return CheckResult(  # the check itself could not run (a lab down, a missing tool)
                self.key,
                False,
                True,
                f"the check could not run: {type(exc).__name__}: {exc}",
            )
        return CheckResult(self.key, True, True, "correct, well done!")

    def hint(self, number: int | None = None) -> Hint:
        """Show the next hint (or hint ``number``, counting from 1)."""
        if not self.hints:
            return Hint(self.key, 0, 0, "no hints for this one: read the exercise text again.")
        if number is None:
            self._hints_shown = min(self._hints_shown + 1, len(self.hints))
            number = self._hints_shown
        number = max(1, min(number, len(self.hints)))
        return Hint(self.key, number, len(self.hints), self.hints[number - 1])

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


def exercise(notebook: str, *, hints: list[str] | None = None) -> Callable[[Checker], Exercise]:
    """Decorator that turns a checker function into a registered :class:`Exercise`."""

    def register(checker: Checker) -> Exercise:
        ex = Exercise(notebook, checker.__name__, checker, list(hints or []))
        REGISTRY[ex.key] = ex
        return ex

    return register


def get(key: str) -> Exercise:
    """Look up ``"nbNN.name"``, importing ``helpers.exercises.nbNN`` on first use."""
    if key not in REGISTRY:
        import importlib

        importlib.import_module(f"{__name__}.{key.split('.', 1)[0]}")
    return REGISTRY[key]
