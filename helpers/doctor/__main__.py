"""``python -m helpers.doctor [URL] [--live]``: the TLS doctor in a terminal (notebook 09).

Prints :func:`helpers.doctor.report` as text. Exit status: 0 when nothing is a problem,
1 when a finding is, 2 when the URL cannot be checked (live mode off, a malformed URL).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import CourseError, LiveModeOff
from . import report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.doctor",
        description="What this Python trusts, every TLS variable checked, and (with a URL) "
        "what each installed client does with it.",
    )
    parser.add_argument("url", nargs="?", help="an https:// URL or a lab scenario name")
    parser.add_argument(
        "--live", action="store_true", help="allow a real internet host (live mode, helpers.live)"
    )
    args = parser.parse_args(argv)
    if args.live:
        from .. import live

        live.enable()
    try:
        result = report(args.url)
    except LiveModeOff:
        print(
            f"{args.url} is not a lab host, and live mode is off: run again with --live "
            "(or set TLS_COURSE_LIVE=1) to let the doctor connect to it.",
            file=sys.stderr,
        )
        return 2
    except CourseError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
