"""Time-ordered ids for rows that are inserted at a high rate."""

from __future__ import annotations

import os
import time
import uuid

_VERSION_BITS = 0xF << 76
_VARIANT_BITS = 0x3 << 62


def uuid7() -> uuid.UUID:
    """A version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Prediction ids are the primary key of ``ml_predictions``: ids that grow with time keep
    that index's inserts on its rightmost pages, where random (version 4) ids would touch
    a random page of an ever larger B-tree on every insert."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return uuid.UUID(int=(value & ~_VERSION_BITS | 0x7 << 76) & ~_VARIANT_BITS | 0x2 << 62)
