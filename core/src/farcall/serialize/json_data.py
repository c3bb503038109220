"""JSONData (``11``): portable across languages and Python versions, data only."""

from __future__ import annotations

import json
from typing import Any

from farcall.serialize.base import SerializationStrategy


class JSONData(SerializationStrategy):
    """``json.dumps``; tuples come back as lists, as with the official strategy."""

    identifier = "11"
    for_code = False

    def dumps(self, obj: Any) -> str:
        return json.dumps(obj)

    def loads(self, body: str) -> Any:
        return json.loads(body)
