"""Task ids are version 7 UUIDs: valid for every client, and ordered by creation time."""

from __future__ import annotations

import time
import uuid

from farcall_service.ids import time_ordered_uuid


def test_ids_are_rfc_9562_version_7() -> None:
    value = uuid.UUID(time_ordered_uuid())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    now_ms = time.time_ns() // 1_000_000
    assert abs((value.int >> 80) - now_ms) < 5_000


def test_ids_sort_by_creation_time_and_do_not_repeat() -> None:
    earlier = [time_ordered_uuid() for _ in range(1000)]
    time.sleep(0.002)
    later = [time_ordered_uuid() for _ in range(1000)]
    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 2000
