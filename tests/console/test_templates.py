"""`ci-gateway templates plan|apply`: templates as code against a gateway and the emulator,
including drift made behind the tool's back (through the API, as another team would)."""

from __future__ import annotations

import asyncio
import io
import json
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ci_emulator.server import RunningEmulator
from gateway._proto import job_kinds_pb2, templates_pb2, templates_pb2_grpc
from gateway.access.config_file import build_access
from gateway.api.server import RunningGateway, start_gateway
from gateway.config.settings import Settings
from gateway.console.exits import ExitCode
from gateway.console.template_plan import desired_from
from gateway.console.templates import run
from gateway.credentials import Credentials, StaticCredentialsProvider
from tests.conftest import BUCKET
from tests.console.conftest import Done
from tests.resources.conftest import platform_access

FILE = """
prune = false

[[templates]]
tag = "Transcode"
name = "mp4-720p"
[templates.params]
container = { format = "mp4" }
video = { codec = "H.264", width = 1280, fps = 30 }
audio = { codec = "aac", samplerate = 44100 }

[[templates]]
tag = "Snapshot"
name = "thumbs"
[templates.params]
mode = "Interval"
count = 5
sprite_snapshot_config = { columns = 4, lines = 4 }
"""


@pytest.fixture
async def platform_gateway(
    settings: Settings, credentials: Credentials
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(
        settings, StaticCredentialsProvider(credentials), access=platform_access()
    )
    try:
        yield running
    finally:
        await running.stop(grace_s=0)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "templates.toml"
    path.write_text(FILE)
    return path


async def templates(gateway: RunningGateway, *argv: str) -> Done:
    out, err = io.StringIO(), io.StringIO()
    code = await run([*argv, "--address", gateway.address], out=out, err=err, environ={})
    return Done(code, out.getvalue(), err.getvalue())


async def custom(gateway: RunningGateway) -> dict[str, templates_pb2.MediaTemplate]:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = templates_pb2_grpc.MediaTemplateServiceStub(channel)
        reply = await stub.DescribeMediaTemplates(
            templates_pb2.DescribeMediaTemplatesRequest(page_size=100)
        )
    return {t.name: t for t in reply.template_list}


async def behind_the_back(gateway: RunningGateway, request: object) -> None:
    """Another client changes the bucket's templates through the API, not through the file."""
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = templates_pb2_grpc.MediaTemplateServiceStub(channel)
        if isinstance(request, templates_pb2.UpdateMediaTemplateRequest):
            await stub.UpdateMediaTemplate(request)
        elif isinstance(request, templates_pb2.CreateMediaTemplateRequest):
            await stub.CreateMediaTemplate(request)
        else:
            assert isinstance(request, templates_pb2.DeleteMediaTemplateRequest)
            await stub.DeleteMediaTemplate(request)


async def test_plan_apply_then_in_sync(
    platform_gateway: RunningGateway, emulator: RunningEmulator, spec: Path
) -> None:
    planned = await templates(platform_gateway, "plan", str(spec))
    assert planned.code == ExitCode.DRIFT, planned.err
    assert "+ create Transcode template 'mp4-720p'" in planned.out
    assert '+  width: "1280"' in planned.out
    assert "plan: 2 to create, 0 to update, 0 to delete, 0 in sync" in planned.out

    applied = await templates(platform_gateway, "apply", str(spec))
    assert applied.code == ExitCode.OK, applied.err
    assert "created Transcode template 'mp4-720p'" in applied.out
    made = await custom(platform_gateway)
    assert made["mp4-720p"].trans_tpl.video.width == "1280"
    assert made["thumbs"].snapshot.sprite_snapshot_config.columns == "4"

    again = await templates(platform_gateway, "plan", str(spec))
    assert again.code == ExitCode.OK, again.out
    assert "plan: 0 to create, 0 to update, 0 to delete, 2 in sync" in again.out
    idempotent = await templates(platform_gateway, "apply", str(spec))
    assert idempotent.code == ExitCode.OK
    assert "nothing to do" in idempotent.out
    assert len(emulator.state.resources.templates.of_bucket(BUCKET)) == 2 + 2  # + 2 official


async def test_drift_made_behind_the_tools_back_is_shown_and_undone(
    platform_gateway: RunningGateway, spec: Path
) -> None:
    assert (await templates(platform_gateway, "apply", str(spec))).code == ExitCode.OK
    made = await custom(platform_gateway)
    changed = templates_pb2.MediaTemplate()
    changed.CopyFrom(made["mp4-720p"])
    changed.trans_tpl.video.width = "1920"
    await behind_the_back(
        platform_gateway,
        templates_pb2.UpdateMediaTemplateRequest(template_id=changed.template_id, template=changed),
    )
    await behind_the_back(
        platform_gateway,
        templates_pb2.DeleteMediaTemplateRequest(template_id=made["thumbs"].template_id),
    )

    planned = await templates(platform_gateway, "plan", str(spec))
    assert planned.code == ExitCode.DRIFT
    assert f"~ update Transcode template 'mp4-720p' ({changed.template_id})" in planned.out
    assert '-  width: "1920"' in planned.out and '+  width: "1280"' in planned.out
    assert "+ create Snapshot template 'thumbs'" in planned.out

    assert (await templates(platform_gateway, "apply", str(spec))).code == ExitCode.OK
    assert (await templates(platform_gateway, "plan", str(spec))).code == ExitCode.OK
    assert (await custom(platform_gateway))["mp4-720p"].trans_tpl.video.width == "1280"


async def test_prune_deletes_what_the_file_does_not_name(
    platform_gateway: RunningGateway, spec: Path
) -> None:
    assert (await templates(platform_gateway, "apply", str(spec))).code == ExitCode.OK
    stray = templates_pb2.MediaTemplate(
        name="stray", smart_cover=job_kinds_pb2.SmartCover(format="jpg")
    )
    await behind_the_back(
        platform_gateway, templates_pb2.CreateMediaTemplateRequest(template=stray)
    )
    # Without prune, a template the file does not name is none of its business.
    assert (await templates(platform_gateway, "plan", str(spec))).code == ExitCode.OK
    planned = await templates(platform_gateway, "plan", str(spec), "--prune")
    assert planned.code == ExitCode.DRIFT
    assert "- delete SmartCover template 'stray'" in planned.out
    assert (await templates(platform_gateway, "apply", str(spec), "--prune")).code == 0
    assert set(await custom(platform_gateway)) == {"mp4-720p", "thumbs"}


async def test_strict_also_counts_fields_ci_has_and_the_file_lacks(
    platform_gateway: RunningGateway, spec: Path
) -> None:
    assert (await templates(platform_gateway, "apply", str(spec))).code == ExitCode.OK
    made = (await custom(platform_gateway))["mp4-720p"]
    made.trans_tpl.video.bitrate = "900"
    await behind_the_back(
        platform_gateway,
        templates_pb2.UpdateMediaTemplateRequest(template_id=made.template_id, template=made),
    )
    assert (await templates(platform_gateway, "plan", str(spec))).code == ExitCode.OK
    await asyncio.to_thread(spec.write_text, "strict = true\n" + FILE)
    strict = await templates(platform_gateway, "plan", str(spec))
    assert strict.code == ExitCode.DRIFT
    assert '-  bitrate: "900"' in strict.out


async def test_plan_as_json_for_pipelines(platform_gateway: RunningGateway, spec: Path) -> None:
    planned = await templates(platform_gateway, "plan", str(spec), "--json")
    assert planned.code == ExitCode.DRIFT
    document = json.loads(planned.out)
    assert document["in_sync"] is False
    assert [(c["action"], c["tag"], c["name"]) for c in document["changes"]] == [
        ("create", "Transcode", "mp4-720p"),
        ("create", "Snapshot", "thumbs"),
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[[templates]]\ntag = 'Nope'\nname = 'x'\n", "tag must be one of"),
        ("[[templates]]\ntag = 'Snapshot'\n", "name is required"),
        ("[[templates]]\ntag = 'Snapshot'\nname = 'x'\nparams = { nope = 1 }\n", "nope"),
        ("[[templates]]\ntag = 'Snapshot'\nname = 'x'\n" * 2, "a second Snapshot"),
        ("colour = 'blue'\n", "unknown keys colour"),
        ("this is not toml", "is not TOML"),
    ],
)
async def test_a_bad_file_is_a_usage_error(
    platform_gateway: RunningGateway, tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    done = await templates(platform_gateway, "plan", str(path))
    assert done.code == ExitCode.USAGE
    assert why in done.err and "Traceback" not in done.err


async def test_a_default_sidecar_refuses_apply(gateway: RunningGateway, spec: Path) -> None:
    """The plain sidecar (no access file) reads, so plan works, but will not write."""
    assert (await templates(gateway, "plan", str(spec))).code == ExitCode.DRIFT
    done = await templates(gateway, "apply", str(spec))
    assert done.code == ExitCode.REFUSED
    assert "PERMISSION_DENIED" in done.err and "OPERATION_NOT_ALLOWED" in done.err


def test_the_cli_dispatches_templates(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["templates", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "templates plan: the bucket's templates differ" in shown
    assert "CI_GATEWAY_TOKEN_FILE" in shown  # how it reaches a shared gateway, as `jobs` says
    assert main(["templates", "plan", "--help"]) == 0
    assert "print the plan (apply: also what was done) as JSON" in capsys.readouterr().out


def test_the_readme_examples_are_valid() -> None:
    """The README's templates file plans, and its platform access file loads."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Templates as code")[1]
    file_text = section.split("```toml\n")[1].split("```")[0]
    desired = desired_from(tomllib.loads(file_text), source="README")
    assert [(t.tag, t.name) for t in desired.templates] == [
        ("Transcode", "mp4-720p"),
        ("Snapshot", "thumbs"),
    ]
    access = readme.split("## Queues, templates and workflows")[1].split("```toml\n")[1]
    config = build_access(tomllib.loads(access.split("```")[0]))
    assert {"queues_write", "templates_write", "workflows_write"} <= config.sidecar_operations
