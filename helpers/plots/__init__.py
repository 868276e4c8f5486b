"""Drawings of handshakes and certificate lifetimes (introduced in notebooks 01 and 03 (handshakes: 06)).

Theory of operation
-------------------
Every function here *draws data it is given*; none of them invents a picture.

* A **handshake diagram** is drawn from a :class:`helpers.capture.Capture`: the bytes
  really sent on a connection, cut into TLS records by :mod:`helpers.handshake`.
* A **handshake timeline** is drawn from :func:`helpers.timing.measure_timeline`:
  wall-clock measurements of real connections through a delaying relay.
* **Expiry timelines** are drawn from X.509 certificates: their ``notBefore`` and
  ``notAfter`` fields (RFC 5280 §4.1.2.5), against today's date.
* A **grade chart** (notebook 08) is drawn from :func:`helpers.probe.grade` results.

Conventions, so a notebook can rely on them:

* every function returns a :class:`matplotlib.figure.Figure` and never calls
  ``plt.show()``: the notebook displays the returned value, or you call
  ``fig.savefig(...)``;
* the figure is created with pyplot (so Jupyter knows how to display it) and then
  released from pyplot at once (``plt.close(fig)``), so it is shown exactly once
  and nothing piles up in pyplot's list of open figures;
* no global matplotlib state is changed: no ``plt.style.use``, no ``rcParams`` edits;
  matplotlib itself is imported only when a figure is drawn, so ``import helpers.plots``
  stays cheap;
* colours come from the Okabe–Ito palette, which stays distinguishable with the common
  forms of colour blindness; colour is never the only cue (labels, hatches, legends).

Artists that tests (and curious learners) may want to find carry a ``gid``:
``"now"`` for the today line, ``"status:<status>"`` on certificate bars,
``"policy"`` on the CA/Browser Forum panel.

Where things are, in reading order
----------------------------------
=================  ================================================================  ========
file               what it holds                                                     notebook
=================  ================================================================  ========
``style.py``       the Okabe–Ito palette, how a figure is made, shared axis bits     01
``flights.py``     ``count_flights``: flights and round trips of a captured           06
                   handshake (no drawing)
``handshakes.py``  ``handshake_diagram``, ``compare_handshakes``: sequence diagrams   01, 06
``status.py``      ``status_of`` and the status names, colours and legend text       03
``chain.py``       ``chain_timeline``: one chain's validity periods, root on top     02, 03
``policy.py``      ``max_lifetime_days``: the CA/B Forum lifetime limits (SC-081)    03
``expiry.py``      ``expiry_gantt``: many hosts' certificates, soonest expiry first  03
                   ``renewal_timeline``: one host's renewals, two-thirds points    10
                   and ARI windows
``timeline.py``    ``handshake_timeline``: measured handshakes on a time axis        06
``grades.py``      ``grade_chart``: how each server's grade is built                 08
=================  ================================================================  ========

Everything public is importable from here: ``from helpers.plots import expiry_gantt``.
"""

from __future__ import annotations

from .chain import chain_timeline
from .expiry import expiry_gantt, renewal_timeline
from .flights import FlightCount, count_flights
from .grades import GRADE_COLORS, grade_chart
from .handshakes import ENCRYPTED_COLOR, PLAINTEXT_COLOR, compare_handshakes, handshake_diagram
from .policy import POLICY_STEPS, max_lifetime_days
from .status import (
    ERROR,
    EXPIRED,
    EXPIRING,
    EXPIRING_WITHIN,
    NOT_YET_VALID,
    STATUS_COLORS,
    STATUS_LABELS,
    VALID,
    status_of,
)
from .style import OKABE_ITO
from .timeline import TIMELINE_COLORS, handshake_timeline

__all__ = [
    "OKABE_ITO",
    "STATUS_COLORS",
    "STATUS_LABELS",
    "EXPIRED",
    "EXPIRING",
    "VALID",
    "NOT_YET_VALID",
    "ERROR",
    "EXPIRING_WITHIN",
    "POLICY_STEPS",
    "max_lifetime_days",
    "status_of",
    "chain_timeline",
    "expiry_gantt",
    "renewal_timeline",
    "PLAINTEXT_COLOR",
    "ENCRYPTED_COLOR",
    "FlightCount",
    "count_flights",
    "handshake_diagram",
    "compare_handshakes",
    "TIMELINE_COLORS",
    "handshake_timeline",
    "GRADE_COLORS",
    "grade_chart",
]
