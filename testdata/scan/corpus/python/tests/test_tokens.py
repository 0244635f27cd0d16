import uuid

import pytest

from app.tokens import parse

PLACEHOLDERS = [
    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "sk-proj-XXXXXXXXXXXXXXXXXXXX",
    "AKIAIOSFODNN7EXAMPLE",
    "<your-api-key>",
    "${API_KEY}",
]


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_placeholders_are_rejected(value):
    with pytest.raises(ValueError):
        parse(value)


def test_request_ids():
    rid = uuid.UUID("6fd7022b-38af-4ece-afdf-44b37ca3e3bd")
    assert rid.version == 4
    digest = "efad15b43b4b7aafdd9a16d7ca8e5e388d1c01940a7a11c31ffd449fbbe5a5ce"
    assert len(digest) == 64
