"""The request_id the gateway makes for a submit that names none is a random UUID, as before."""

from __future__ import annotations

import uuid

from gateway.jobs.submit import REQUEST_ID, new_request_id


def test_made_request_ids_are_version_4_uuids_in_canonical_text() -> None:
    made = [new_request_id() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
        assert REQUEST_ID.fullmatch(text)
