"""The request_id the gateway makes for a submit that names none is a random UUID, as before;
the marker derived from it leaves the answers the caller reads."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._proto import media_pb2
from gateway.jobs.submit import (
    _MARKER,
    MARKER_PREFIX,
    REQUEST_ID,
    new_request_id,
    strip_marker,
    strip_markers,
    with_marker,
)
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


_MARKED = st.builds(
    lambda head, space, digest, tail: head + space + MARKER_PREFIX + digest + tail,
    st.text(max_size=40),
    st.sampled_from(["", " ", "  ", "\t", "\n"]),
    st.one_of(
        st.text("0123456789abcdef", min_size=20, max_size=20),
        st.text("0123456789abcdefABCDEF-", min_size=18, max_size=22),
    ),
    st.sampled_from(["", "\n", "\n\n", " ", "x", "\r\n"]),
)


@settings(max_examples=2000, deadline=None)
@given(user_data=st.one_of(st.text(max_size=60), _MARKED))
def test_strip_marker_is_the_regexs_substitution(user_data: str) -> None:
    """`strip_marker` tells UserData without a marker by a substring test of its tail, then
    substitutes as before: the same result as the regex alone, for any text (markers near the
    end, with and without their space, before line breaks, with digests a character short or
    long or in capitals)."""
    assert strip_marker(user_data) == _MARKER.sub("", user_data)
    jobs = [media_pb2.JobsDetail(operation=media_pb2.Operation(user_data=user_data))]
    strip_markers(jobs)
    assert jobs[0].operation.user_data == _MARKER.sub("", user_data)
