"""Ids given in any form the uuid module accepts reach the service in one form."""

from __future__ import annotations

import uuid

import pytest
from farcall.errors import FarcallError
from farcall.sdk.batch import canonical_id

ID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.mark.parametrize("given", [
    ID,
    ID.upper(),
    uuid.UUID(ID),
    "{" + ID + "}",
    ID.replace("-", ""),
    "urn:uuid:" + ID,
])
def test_every_form_becomes_the_canonical_one(given: object) -> None:
    assert canonical_id(given, "task_id") == ID


@pytest.mark.parametrize("given", [ID[:-1] + "g", ID + "0", " " + ID, ID + "\n", "", None, 7])
def test_anything_else_is_refused_by_name(given: object) -> None:
    with pytest.raises(FarcallError, match="task_id must be a UUID"):
        canonical_id(given, "task_id")
