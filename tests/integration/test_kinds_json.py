"""The README's JSON examples, sent the way grpcurl sends them: descriptors from the gateway's
server reflection (no generated code), the request parsed from JSON, the answer printed as JSON,
and the job's output files read from that JSON and probed.

This is the issue's "grpcurl through reflection can submit each typed kind with its documented
fields, wait for it and read its outputs": one example per family (transcode, snapshot and
animation, concat and segment, enhancement, watermark), so the README cannot show a request the
gateway or CI would refuse.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ci_emulator.server import RunningEmulator
from gateway._proto import service_pb2
from gateway.api.server import RunningGateway
from gateway.config.settings import Settings
from tests.ci_emulator.media_support import probe_file
from tests.conftest import settings_for
from tests.integration.kinds_support import (
    CLIP_HEIGHT,
    CLIP_WIDTH,
    FAST,
    WAIT_CALLS,
    WAIT_TIMEOUT_S,
    check_file,
    make_clip,
)
from tests.integration.test_kinds_emulator import CASES

SERVICE = "ci.media.v1.MediaJobService"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
README_INPUTS = ("input/demo.mp4", "input/intro.mp4")
# What the first file of each README example holds, made from the 160x128 clip:
# (codec, width, height).
README_SHAPES = {
    "Transcode": ("h264", 640, 512),
    "Snapshot": ("mjpeg", 320, 256),
    "Concat": ("h264", CLIP_WIDTH, CLIP_HEIGHT),
    "SuperResolution": ("h264", 900, 720),
    "Watermark": ("h264", CLIP_WIDTH, CLIP_HEIGHT),
}
RUNNING = frozenset({"JOB_STATE_SUBMITTED", "JOB_STATE_RUNNING"})


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("kinds-json"))


@pytest.fixture
def bucket_dir(bucket_dir: Path, clip: Path) -> Path:
    """The shared bucket folder, plus the objects the README's examples read."""
    for key in README_INPUTS:
        shutil.copyfile(clip, bucket_dir / key)
    return bucket_dir


@pytest.fixture
def settings(emulator: RunningEmulator) -> Settings:
    return settings_for(emulator, tracking=FAST)


def readme_examples() -> list[str]:
    """The README's SubmitMediaJob requests, one JSON text per family."""
    section = README.split("<!-- kind-examples:start")[1].split("<!-- kind-examples:end")[0]
    return re.findall(r"^```json\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


class ReflectedApi:
    """The gateway's API as grpcurl sees it: only the descriptors server reflection serves,
    JSON in (`json_format.Parse`, as grpcurl reads `-d`) and JSON out (`MessageToDict`:
    lowerCamelCase names, enums by name, as grpcurl prints)."""

    def __init__(self, channel: grpc.aio.Channel, pool: descriptor_pool.DescriptorPool) -> None:
        self._channel = channel
        self._pool = pool

    @classmethod
    async def connect(cls, channel: grpc.aio.Channel) -> ReflectedApi:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
        (reply,) = [reply async for reply in stub.ServerReflectionInfo(iter([ask]), timeout=10)]
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(blob)
            for blob in reply.file_descriptor_response.file_descriptor_proto
        ]
        # The answer holds the service's file and everything it imports, in no set order; a
        # pool takes a file once its imports are in.
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()
        for _ in range(len(files)):  # bounded: each pass adds at least one file, or stops
            ready = [f for f in files if f.name not in added and set(f.dependency) <= added]
            if not ready:
                break
            for file in ready:
                pool.Add(file)
                added.add(file.name)
        assert added == {f.name for f in files}, "reflection left out an import"
        return cls(channel, pool)

    def parse(self, method: str, body: str) -> Message:
        """`method`'s request from JSON, as grpcurl reads `-d`."""
        rpc = self._pool.FindMethodByName(f"{SERVICE}.{method}")
        return json_format.Parse(body, message_factory.GetMessageClass(rpc.input_type)())

    async def call(self, method: str, body: str) -> dict[str, Any]:
        request = self.parse(method, body)
        rpc = self._pool.FindMethodByName(f"{SERVICE}.{method}")
        reply_class = message_factory.GetMessageClass(rpc.output_type)
        call = self._channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=reply_class.FromString,
        )
        reply: Message = await call(request, timeout=WAIT_TIMEOUT_S + 5)
        return json_format.MessageToDict(reply)


async def test_every_typed_request_is_the_same_from_json(gateway: RunningGateway) -> None:
    """Each kind's typed request of the end-to-end table, written as JSON and read back with
    the reflected descriptors alone, is the same request: grpcurl can send every typed kind
    with every field that table uses (the README's examples then run one per family)."""
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        api = await ReflectedApi.connect(channel)
    for case in CASES:
        typed = service_pb2.SubmitMediaJobRequest(request=case.build())
        from_json = api.parse("SubmitMediaJob", json_format.MessageToJson(typed))
        assert from_json.SerializeToString(deterministic=True) == typed.SerializeToString(
            deterministic=True
        ), case.kind


def test_the_readme_has_one_example_per_family() -> None:
    tags = [json.loads(text)["request"]["tag"] for text in readme_examples()]
    assert tags == list(README_SHAPES)


async def test_readme_examples_run_from_json_through_reflection(
    gateway: RunningGateway, bucket_dir: Path
) -> None:
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        api = await ReflectedApi.connect(channel)
        for body in readme_examples():  # bounded: one per family
            tag = json.loads(body)["request"]["tag"]
            submitted = await api.call("SubmitMediaJob", body)
            wait = json.dumps(
                {"job_id": submitted["jobsDetail"]["jobId"], "timeout": f"{WAIT_TIMEOUT_S}s"}
            )
            for _ in range(WAIT_CALLS):
                job = (await api.call("WaitMediaJob", wait))["jobsDetail"]
                if job["state"] not in RUNNING:
                    break
            assert job["state"] == "JOB_STATE_SUCCESS", (tag, job.get("message"))
            # The files, as a grpcurl user reads them: objectPrefix + each objectName.
            files = job["operation"]["mediaResult"]["outputFile"]
            prefix = files.get("objectPrefix", "")
            md5 = {info["objectName"]: info["md5"] for info in files["md5Info"]}
            assert files["objectName"], tag
            for name in files["objectName"]:
                check_file(bucket_dir, prefix + name, md5[name])
            probed = probe_file(bucket_dir / (prefix + files["objectName"][0]))
            assert (probed.video_codec, probed.width, probed.height) == README_SHAPES[tag], tag
