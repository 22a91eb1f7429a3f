"""The request_id the gateway makes for a submit that names none is a random UUID, as before;
the marker derived from it leaves the answers the caller reads."""

from __future__ import annotations

import uuid

from gateway._proto import media_pb2
from gateway.jobs.submit import REQUEST_ID, new_request_id, strip_markers, with_marker
from gateway.upstream.xml_codec import parse_document


def test_made_request_ids_are_version_4_uuids_in_canonical_text() -> None:
    made = [new_request_id() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
        assert REQUEST_ID.fullmatch(text)


def test_only_the_marker_leaves_the_raw_xml_user_data() -> None:
    """The raw `<JobsDetail>` loses the gateway's marker and nothing else: a caller's spaces at
    either end stay, and a job the gateway did not submit keeps its UserData as CI sent it."""

    def raw(user_data: str) -> str:
        return f"<JobsDetail><Operation><UserData>{user_data}</UserData></Operation></JobsDetail>"

    jobs = [
        media_pb2.JobsDetail(raw_xml=raw(with_marker(" mine ", "rid-1") + "\n  ")),
        media_pb2.JobsDetail(raw_xml=raw(" theirs ")),
    ]
    strip_markers(jobs)
    kept = [parse_document(job.raw_xml.encode()).findtext("Operation/UserData") for job in jobs]
    assert kept == [" mine ", " theirs "]
