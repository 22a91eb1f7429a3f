"""Item 3 of issue 8 and the gateway's per-call CPU pieces, in process, without any I/O.

* Signer: microseconds per `Authorization` value, ours (`select_signed_headers` +
  `authorization`, exactly what `CiClient._send` runs) vs the SDK's `CosS3Auth.__call__` (which
  filters the headers itself), on the same request: `POST /jobs` with Host, Content-Type,
  Content-Length and Content-MD5. Both read the time on every call and so derive a new sign key
  each time, as each does in real use. Before timing, both are run at one frozen time and must
  produce the same header, which proves the inputs are the same.
* Codec: `xml_codec.encode` of a submit body and `xml_codec.decode` of real emulator answers
  (a submit answer, a describe of one finished MediaInfo job, a list of 10).

Each figure is the median of `reps` timed batches (min and max kept), after one warm-up batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

from bench.clients import SUBMIT_BODY
from bench.common import CI_HOST, SECRET_ID, SECRET_KEY, Spread
from gateway._proto import media_pb2, service_pb2
from gateway.upstream import signing, xml_codec

SIGN_HEADERS = {
    "Host": CI_HOST,
    "Content-Type": "application/xml",
    "Content-Length": str(len(SUBMIT_BODY)),
    "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
}
FROZEN_NOW = 1_700_000_000


def time_per_call_us(function: Callable[[], object], *, number: int, reps: int) -> Spread:
    function()  # warm caches and imports
    batches = []
    for _ in range(reps + 1):
        started = time.perf_counter()
        for _ in range(number):
            function()
        batches.append((time.perf_counter() - started) / number * 1e6)
    return Spread.of(batches[1:])  # the first batch is a warm-up


def ours(now: Callable[[], float] = time.time) -> str:
    start = int(now())
    return signing.authorization(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        method="POST",
        host=None,
        path="/jobs",
        params={},
        headers=signing.select_signed_headers(SIGN_HEADERS),
        start=start - 60,
        end=start + 600,
    )


def _sdk_signer() -> tuple[Callable[[], str], Callable[[], str]]:
    """The SDK's signer on a prepared request; returns (sign now, sign at FROZEN_NOW)."""
    import requests
    from qcloud_cos import CosConfig
    from qcloud_cos.cos_auth import CosS3Auth

    config = CosConfig(Region="ap-guangzhou", SecretId=SECRET_ID, SecretKey=SECRET_KEY)
    auth = CosS3Auth(config, "/jobs", params={}, expire=600)
    prepared = requests.Request(
        "POST", f"https://{CI_HOST}/jobs", headers=SIGN_HEADERS, data=SUBMIT_BODY
    ).prepare()

    def sign() -> str:
        return str(auth(prepared).headers["Authorization"])

    def sign_frozen() -> str:
        with mock.patch("qcloud_cos.cos_auth.time.time", return_value=FROZEN_NOW):
            return sign()

    return sign, sign_frozen


def signer(*, reps: int, number: int) -> dict[str, Any]:
    sdk_sign, sdk_frozen = _sdk_signer()
    # The SDK backdates 60 s and signs `expire` ahead; ours, as CiClient calls it, the same.
    ours_frozen = ours(lambda: FROZEN_NOW)
    if ours_frozen != sdk_frozen():
        raise AssertionError(f"signers disagree:\n ours {ours_frozen}\n sdk  {sdk_frozen()}")
    ours_us = time_per_call_us(ours, number=number, reps=reps)
    sdk_us = time_per_call_us(sdk_sign, number=max(1, number // 4), reps=reps)
    return {"ours_us": ours_us, "sdk_us": sdk_us, "speedup": sdk_us.median / ours_us.median}


def codec(bodies: Mapping[str, bytes], *, reps: int, number: int) -> dict[str, Spread]:
    """Encode the submit body; decode each captured answer into its response type."""
    request = media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object="input/bench.mp4"))
    types: dict[str, type[Any]] = {
        "submit": service_pb2.SubmitMediaJobResponse,
        "describe": service_pb2.DescribeMediaJobsResponse,
        "list": service_pb2.ListMediaJobsResponse,
    }
    results = {
        "encode submit": time_per_call_us(
            lambda: xml_codec.encode(request, root="Request"), number=number, reps=reps
        )
    }
    for name, body in bodies.items():
        scale = max(1, len(body) // 1000)
        results[f"decode {name} ({len(body)} B)"] = time_per_call_us(
            _decoder(body, types[name]), number=max(10, number // scale), reps=reps
        )
    return results


def _decoder(body: bytes, message_type: type[Any]) -> Callable[[], object]:
    return lambda: xml_codec.decode(body, message_type, root="Response")
