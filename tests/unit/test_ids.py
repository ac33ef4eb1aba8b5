"""PROTOCOL §5.4 id vectors."""

from __future__ import annotations

import pytest

from adurable._ids import branch_id, hash_id, operation_id

ROOT1 = "1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97"
ROOT3 = "6f760b9e9eac89f07ab0223b0f4acb04d1e355d893a1b86a83f4d4b405adee99"
BRANCH0 = "1712f93e2f51df042e2b933907d75accfe34a48fe4a42a24e0b08131bc72d591"


@pytest.mark.parametrize(
    ("prefix", "position", "expected"),
    [
        (None, 1, ROOT1),
        (None, 2, "c5faca15ac2f93578b39ef4b6bbb871bdedce4ddd584fd31f0bb66fade3947e6"),
        (None, 3, ROOT3),
        (ROOT1, 1, "974bfc6321e227b0ff101342eaf19b336f002dc6cc99c18f0941a7755cc20fc4"),
        (ROOT1, 2, "9d8bc609108ec7b3600d6cceec22d18553e3e1ec52a3568cb251464a3d39d24f"),
        (BRANCH0, 1, "48550629202cb2d0e1bd4f07d826361bbd2defa71565264c01647fc2da0e9b1e"),
        (ROOT3, 1, "4fcce65ec00309c63e7973cc7ba98d082f6db23ff491f8ae0d358d94a449573f"),
    ],
)
def test_operation_id_vectors(prefix: str | None, position: int, expected: str) -> None:
    assert operation_id(prefix, position) == expected


def test_branch_id_vector() -> None:
    assert branch_id(ROOT1, 0) == BRANCH0


def test_empty_prefix_is_root() -> None:
    assert operation_id("", 1) == ROOT1 == hash_id("1")
