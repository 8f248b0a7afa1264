"""uuid7: RFC 9562 layout, ordered by creation time, unique."""

from __future__ import annotations

import time
import uuid

from backend.db.ids import uuid7


def test_layout_version_variant_and_timestamp():
    before = time.time_ns() // 1_000_000
    u = uuid7()
    after = time.time_ns() // 1_000_000
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert before <= u.int >> 80 <= after


def test_ids_made_later_sort_later_and_never_repeat():
    first = [uuid7() for _ in range(5_000)]
    time.sleep(0.002)
    second = [uuid7() for _ in range(5_000)]
    assert max(first) < min(second)
    assert len(set(first + second)) == 10_000
    assert str(max(first)) < str(min(second))  # the text form (what Postgres sorts) too
