"""Why tasks are still pending when a wait gives up: their endpoints' state.

"3 of 3 tasks still pending" leaves a user guessing; the common cause is an endpoint
that is not running, which the service knows, so the message says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

#: Tasks whose endpoints are looked up (the first ones pending); enough to name the cause.
SAMPLE = 500


def pending_message(
    remaining: Sequence[str],
    total: int,
    documents: Callable[[list[str]], dict[str, dict[str, Any]]],
    endpoint_status: Callable[[str], dict[str, Any]],
) -> str:
    """``"N of M tasks still pending"``, followed by the offline endpoints among those
    the pending tasks wait for, with when each was last seen. Looking them up is best
    effort: a failure leaves the count alone."""
    message = f"{len(remaining)} of {total} tasks still pending"
    try:
        endpoints = sorted({
            str(doc["endpoint_id"]) for doc in documents(list(remaining[:SAMPLE])).values()
            if doc.get("endpoint_id")
        })
        offline = []
        for endpoint_id in endpoints[:10]:
            status = endpoint_status(endpoint_id)
            if status.get("status") == "offline":
                offline.append(f"endpoint {endpoint_id} is offline"
                               + _since(status.get("details", {}).get("last_seen")))
    except Exception:
        return message
    return message + (": " + "; ".join(offline) if offline else "")


def _since(last_seen: Any) -> str:
    if not isinstance(last_seen, (int, float)) or last_seen <= 0:
        return " (never seen)"
    when = datetime.fromtimestamp(last_seen, timezone.utc).isoformat(timespec="seconds")
    return f" (last seen {when}, {max(0, int(time.time() - last_seen))} s ago)"
