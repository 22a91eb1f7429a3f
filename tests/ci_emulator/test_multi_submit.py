"""CreateMediaJobs' multi-operation form: one job per Operation, answered in order, all or none."""

from __future__ import annotations

import pytest

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET, DONE, VIDEO_KEY, SignedClient


def multi_body(*operations: str, key: str = VIDEO_KEY, extra: str = "") -> bytes:
    """`operations`: each Operation's inner XML (its Tag included, or not)."""
    nodes = "".join(f"<Operation>{operation}</Operation>" for operation in operations)
    return f"<Request><Input><Object>{key}</Object></Input>{nodes}{extra}</Request>".encode()


def media_info(user_data: str) -> str:
    return f"<Tag>MediaInfo</Tag><UserData>{user_data}</UserData>"


async def test_each_operation_is_one_job_answered_in_order(
    client: SignedClient, emu: RunningEmulator
) -> None:
    body = multi_body(media_info("a"), media_info("b"), media_info("c"), extra="<QueueId/>")
    reply = (await client.send("POST", "/jobs", body=body)).ok()
    details = reply.xml().findall("JobsDetail")
    assert [d.findtext("Operation/UserData") for d in details] == ["a", "b", "c"]
    assert [d.findtext("Tag") for d in details] == ["MediaInfo"] * 3
    job_ids = [d.findtext("JobId") or "" for d in details]
    assert len(set(job_ids)) == 3 and all(job_ids)
    assert emu.state.jobs_created == 3
    for user_data in "abc":
        assert emu.state.jobs_by_input[(BUCKET, VIDEO_KEY, user_data)] == 1
    # Each is an ordinary job: it runs, and describe and list know it.
    for job_id in job_ids:
        assert (await emu.state.wait_for_job_state(job_id, DONE, timeout=10)).state == "Success"
    listed = (await client.list_jobs({"inputObject": VIDEO_KEY})).ok().xml()
    assert {d.findtext("JobId") for d in listed.findall("JobsDetail")} == set(job_ids)


MULTI_REFUSALS: list[tuple[str, bytes, int, str]] = [
    ("seven operations", multi_body(*[media_info(str(i)) for i in range(7)]), 400,
     "InvalidArgument"),
    ("an operation without Tag", multi_body(media_info("a"), "<UserData>b</UserData>"), 400,
     "InvalidArgument"),
    ("an invalid operation",
     multi_body(media_info("a"), "<Tag>MediaInfo</Tag><JobLevel>9</JobLevel>"), 400,
     "InvalidArgument"),
    ("an unknown tag", multi_body(media_info("a"), "<Tag>Nonsense</Tag>"), 400, "InvalidArgument"),
    ("a kind the emulator does not run", multi_body(media_info("a"), "<Tag>VideoTag</Tag>"), 501,
     "NotImplemented"),
    ("no input", b"<Request><Operation><Tag>MediaInfo</Tag></Operation></Request>", 400,
     "InvalidArgument"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), MULTI_REFUSALS, ids=[r[0] for r in MULTI_REFUSALS]
)
async def test_one_bad_operation_refuses_the_whole_request(
    client: SignedClient, emu: RunningEmulator, case: str, body: bytes, status: int, code: str
) -> None:
    reply = await client.send("POST", "/jobs", body=body)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert emu.state.jobs_created == 0


async def test_a_top_level_tag_keeps_the_single_form(client: SignedClient) -> None:
    body = multi_body(media_info("a"), media_info("b"), extra="<Tag>MediaInfo</Tag>")
    reply = await client.send("POST", "/jobs", body=body)
    # Several Operations under one top-level Tag: no CI document describes that form.
    assert (reply.status, reply.code) == (501, "NotImplemented")
