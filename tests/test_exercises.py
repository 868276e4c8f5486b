"""Every exercise check rejects the student's stub and accepts the solution.

Exercise cells carry the tag ``exercise:nbNN.name`` in the lesson (the stub) and in
``notebooks/solutions/`` (the solution). Each cell is run on its own, in a fresh
namespace, exactly as a learner's kernel would run it.
"""

from __future__ import annotations

import contextlib
import io

import nbformat
import pytest

from helpers import exercises

from . import notebooks as nbs

TAG = "exercise:"


def _tagged_cells(paths) -> dict[str, str]:
    cells: dict[str, str] = {}
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith(TAG):
                    key = tag[len(TAG) :]
                    assert key not in cells, f"{key} is tagged twice ({path.name})"
                    cells[key] = cell.source
    return cells


STUBS = _tagged_cells(nbs.lessons())
SOLUTIONS = _tagged_cells(nbs.solutions())


def _run(source: str, key: str) -> exercises.CheckResult:
    namespace: dict = {"__name__": "__exercise__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, f"<{key}>", "exec"), namespace)  # noqa: S102 (our own notebooks)
    ex = exercises.get(key)
    return ex.check(namespace[ex.name])


def test_every_lesson_has_at_least_two_exercises():
    for path in nbs.lessons():
        number = path.name[:2]
        mine = [k for k in STUBS if k.startswith(f"nb{number}.")]
        assert len(mine) >= 2, f"{path.name} has {len(mine)} exercises"


def test_every_exercise_has_a_solution_and_every_solution_an_exercise():
    assert set(STUBS) == set(SOLUTIONS)


def test_solutions_use_nbgrader_markers():
    for key, source in SOLUTIONS.items():
        assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, key


@pytest.mark.parametrize("key", sorted(STUBS))
def test_check_rejects_the_stub(key):
    result = _run(STUBS[key], key)
    assert not result.passed
    assert not result.attempted, "the stub should read as 'not attempted yet'"


@pytest.mark.parametrize("key", sorted(SOLUTIONS))
def test_check_accepts_the_solution(key):
    result = _run(SOLUTIONS[key], key)
    assert result.passed, result.message


@pytest.mark.parametrize("key", sorted(STUBS))
def test_check_rejects_a_wrong_answer(key):
    """An answer that returns something plausible but wrong is reported as wrong, not as passed."""
    ex = exercises.get(key)
    result = ex.check(lambda *args, **kwargs: None)
    assert not result.passed and result.attempted


def test_hints_are_revealed_one_at_a_time():
    ex = exercises.get("nb00.openssl_version_tuple")
    ex._hints_shown = 0
    first, second = ex.hint(), ex.hint()
    assert (first.number, second.number) == (1, 2)
    assert first.text != second.text
    assert "Hint 1/" in first._repr_html_()


def test_a_crash_in_the_learners_code_points_at_their_line():
    ex = exercises.get("nb00.openssl_version_tuple")
    namespace: dict = {}
    exec("def broken(text):\n    return 1 / 0\n", namespace)  # noqa: S102
    result = ex.check(namespace["broken"])
    assert result.attempted and not result.passed
    assert result.message.startswith("your code raised ZeroDivisionError") and "line 2" in result.message


def test_a_crash_inside_the_check_is_not_blamed_on_the_learner():
    def checker(answer):
        answer()
        raise OSError("the lab is not running")

    ex = exercises.Exercise("nbXX", "demo", checker)
    result = ex.check(lambda: 42)
    assert not result.passed
    assert result.message == "the check could not run: OSError: the lab is not running"
