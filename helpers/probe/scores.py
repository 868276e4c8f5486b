"""The rating tables: category scores, weights and letters (introduced in notebook 08).

The grade follows the SSL Labs *SSL Server Rating Guide* (version 2009 and its
published grading changes). Three categories are scored from 0 to 100, each from a
table below:

* **protocol support** (:data:`PROTOCOL_SCORES`): the average of the best and the
  worst version the server accepts;
* **key exchange** (:data:`KEY_EXCHANGE_SCORES`): the weakest key the server uses (the
  certificate's, or an (EC)DH group), in RSA-equivalent bits;
* **cipher strength** (:data:`CIPHER_SCORES`): the average of the strongest and the
  weakest symmetric cipher.

The total is weighted 30/30/40 (:data:`WEIGHTS`) and turned into a letter
(:data:`LETTERS`, :func:`letter_for`). Then the rules in ``rules`` cap that letter.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "PROTOCOL_SCORES",
    "KEY_EXCHANGE_SCORES",
    "CIPHER_SCORES",
    "WEIGHTS",
    "LETTERS",
    "letter_for",
]

#: Protocol score per version (SSL Server Rating Guide, "Protocol support"). The category
#: score is the average of the best and the worst version the server accepts.
PROTOCOL_SCORES: dict[str, int] = {
    "SSLv2": 0,
    "SSLv3": 80,
    "TLSv1": 90,
    "TLSv1.1": 95,
    "TLSv1.2": 100,
    "TLSv1.3": 100,
}

#: Key exchange score by strength in RSA-equivalent bits ("Key exchange"): the first row
#: whose bound the strength is *below* applies. Anonymous key exchange scores 0.
KEY_EXCHANGE_SCORES: tuple[tuple[int, int], ...] = (
    (512, 20),
    (1024, 40),
    (2048, 80),
    (4096, 90),
    (2**31, 100),
)

#: Cipher score by symmetric key strength in bits ("Cipher strength"): first row whose
#: bound the strength is below. The category score averages the strongest and weakest.
CIPHER_SCORES: tuple[tuple[int, int], ...] = (
    (1, 0),  # no encryption at all (NULL suites)
    (128, 20),
    (256, 80),
    (2**31, 100),
)

#: Category weights (they sum to 1).
WEIGHTS: dict[str, float] = {"protocol": 0.3, "key_exchange": 0.3, "cipher": 0.4}

#: Letter from the total score: the first row whose minimum the score reaches.
LETTERS: tuple[tuple[float, str], ...] = (
    (80, "A"),
    (65, "B"),
    (50, "C"),
    (35, "D"),
    (20, "E"),
    (0, "F"),
)


def letter_for(score: float) -> str:
    """The letter for a total score (:data:`LETTERS`)."""
    for minimum, letter in LETTERS:
        if score >= minimum:
            return letter
    return "F"


def _bucket(value: int, table: Sequence[tuple[int, int]]) -> int:
    for bound, score in table:
        if value < bound:
            return score
    return table[-1][1]
