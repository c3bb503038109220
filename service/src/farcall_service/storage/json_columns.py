"""Reading JSON columns that may hold what no answer could send back.

The service refuses free-form JSON nested deeper than its ``max_json_depth`` (at most
``settings.JSON_DEPTH_CEILING``, the same :data:`READ_DEPTH`), but rows stored before
that check, or written by other means, may nest hundreds of levels deep: the
answers' encoder gives up at about 255, and Python's parser at about 1000. So the
SQL store reads every JSON column through :func:`loads_stored` (the engine's
``json_deserializer``), which cuts what lies deeper than :data:`READ_DEPTH` and puts a
note in its place: a read answers, and the rest of the value is still there.
"""

from __future__ import annotations

import json
from typing import Any

from farcall_service.settings import JSON_DEPTH_CEILING

#: The deepest nesting a stored value is read back with.
READ_DEPTH = JSON_DEPTH_CEILING
#: The key of a note that stands for data that was not stored or is not shown.
NOTE = "farcall_dropped"
_CUT = f"nested deeper than {READ_DEPTH} levels: not shown"


def loads_stored(text: str | bytes) -> Any:
    """``json.loads``, with objects and arrays deeper than :data:`READ_DEPTH` cut."""
    try:
        value = json.loads(text)
    except RecursionError:
        return {NOTE: _CUT}
    return _cut(value, READ_DEPTH) if _deeper_than(value, READ_DEPTH) else value


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether ``value`` nests more than ``levels`` objects and arrays; iterative, and
    it stops at the first container past ``levels``."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        depth += 1
        if depth > levels:
            return True
        stack.extend((child, depth) for child in item if isinstance(child, (dict, list)))
    return False


def _cut(value: Any, levels: int) -> Any:
    """A copy of ``value`` whose objects and arrays below ``levels`` are the note.
    Recursive, but never more than ``levels`` deep."""
    if not isinstance(value, (dict, list)):
        return value
    if levels == 0:
        return _CUT
    if isinstance(value, dict):
        return {key: _cut(child, levels - 1) for key, child in value.items()}
    return [_cut(child, levels - 1) for child in value]
