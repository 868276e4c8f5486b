"""Waiting for a condition in tests, without fixed sleeps (issue 13's hostile-client tests).

A test of a server under load asks "are the threads / descriptors / connections back
to normal yet?". A fixed ``sleep`` is either too short on a loaded 2-core CI machine or
wastes time everywhere else; :func:`wait_for` polls until the condition holds or a
deadline passes, and returns the final answer for the test to assert.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``condition`` every 50 ms until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def open_fds() -> int:
    """How many descriptors this process holds (Linux ``/proc``)."""
    gc.collect()  # sockets other tests dropped without closing must not count either way
    return len(os.listdir("/proc/self/fd"))
