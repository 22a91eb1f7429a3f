"""The official Python SDK's template calls, unchanged, against the emulator (as
`test_official_sdk` does for jobs and queues): `ci_create_template`, `ci_update_template`,
`ci_get_template`, `ci_delete_template` send what CI takes and parse what the emulator answers."""

from __future__ import annotations

import pytest
from qcloud_cos import CosServiceError

from ci_emulator.server import RunningEmulator
from tests.ci_emulator.conftest import BUCKET
from tests.ci_emulator.test_official_sdk import run, sdk_client

# The SDK turns the dict into `<Request>` with xmltodict: the demo's shape (ci_template.py).
TRANSCODE = {
    "Tag": "Transcode",
    "Name": "sdk-mp4-720p",
    "Container": {"Format": "mp4"},
    "Video": {"Codec": "H.264", "Width": "1280", "Fps": "30"},
    "Audio": {"Codec": "aac", "Samplerate": "44100"},
}


async def test_sdk_creates_gets_updates_and_deletes_a_template(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    created = await run(client.ci_create_template, Bucket=BUCKET, Template=TRANSCODE)
    template = created["Template"]
    template_id = template["TemplateId"]
    assert (template["Tag"], template["Name"], template["Category"]) == (
        "Transcode",
        "sdk-mp4-720p",
        "Custom",
    )
    assert template["TransTpl"]["Video"]["Width"] == "1280"

    listed = await run(client.ci_get_template, Bucket=BUCKET)  # Category Custom, page 1 of 10
    assert [entry["TemplateId"] for entry in listed["TemplateList"]] == [template_id]
    assert listed["TotalCount"] == "1"
    by_id = await run(client.ci_get_template, Bucket=BUCKET, Ids=template_id)
    assert by_id["TemplateList"][0]["Name"] == "sdk-mp4-720p"

    changed = {**TRANSCODE, "Video": {"Codec": "H.264", "Width": "1920", "Fps": "30"}}
    updated = await run(
        client.ci_update_template, Bucket=BUCKET, TemplateId=template_id, Template=changed
    )
    assert updated["Template"]["TransTpl"]["Video"]["Width"] == "1920"
    stored = emu.state.resources.templates.get(BUCKET, template_id)
    assert stored is not None
    assert ("Video", [("Codec", "H.264"), ("Width", "1920"), ("Fps", "30")]) in stored.params

    deleted = await run(client.ci_delete_template, Bucket=BUCKET, TemplateId=template_id)
    assert deleted["TemplateId"] == template_id
    assert emu.state.resources.templates.get(BUCKET, template_id) is None


async def test_sdk_lists_official_templates(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    official = await run(client.ci_get_template, Bucket=BUCKET, Category="Official")
    assert {entry["Category"] for entry in official["TemplateList"]} == {"Official"}


async def test_sdk_sees_a_refused_template(emu: RunningEmulator) -> None:
    client = sdk_client(emu)
    with pytest.raises(CosServiceError) as caught:
        await run(client.ci_create_template, Bucket=BUCKET, Template={"Tag": "Transcode"})
    assert caught.value.get_status_code() == 400
    # The SDK digests only errors with <Resource>, which CI's host leaves out (see
    # test_official_sdk): the raw body is CI's.
    assert "<Code>InvalidArgument</Code>" in caught.value.get_origin_msg()
