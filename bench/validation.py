"""Validation alone, per call: `python -m bench.validation`.

`validate_submit` is the largest block of the gateway's own Python in a submit that is not
the codec's, the signer's or the access line's (bench/README, session 14). The whole call
(`bench.inproc`) counts it with everything else and with bench's one request, a MediaInfo
submit that sets two fields; this counts it alone, on that request and on a typed kind's
(`RICH`: a Transcode submit with a template, user data, an output, watermark templates and
unknown nodes), whose rules and walks read many more fields.

Two readings, as `bench.inproc` has: µs per call (fastest of `--reps` batches), or with
`--callgrind` instructions per call: the run under `valgrind --tool=callgrind` with `--calls`
N and 2N, the difference divided by N, so start-up and warm-up cancel out.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from bench.common import BUCKET, OBJECT_KEY, REGION, callgrind_per_call
from gateway._proto import media_pb2, service_pb2
from gateway.api.validation import validate_submit
from gateway.config.settings import Settings


def _rich() -> service_pb2.SubmitMediaJobRequest:
    rpc = service_pb2.SubmitMediaJobRequest()
    rpc.request.tag = "Transcode"
    rpc.request.input.object = OBJECT_KEY
    operation = rpc.request.operation
    operation.template_id = "t0123456789abcdef"
    operation.user_data = "order-42"
    operation.free_transcode = "1"
    operation.output.region, operation.output.bucket = REGION, BUCKET
    operation.output.object = "out/a.mp4"
    operation.watermark_template_id.extend(["w1", "w2"])
    operation.extra_nodes.add(name="ZqOther", text="1")
    operation.extra_nodes.add(name="ZqCustom", text="x").children.add(name="ZqChild", text="y")
    return rpc


REQUESTS: dict[str, service_pb2.SubmitMediaJobRequest] = {
    "submit": service_pb2.SubmitMediaJobRequest(
        request=media_pb2.Request(tag="MediaInfo", input=media_pb2.Input(object=OBJECT_KEY))
    ),
    "rich": _rich(),
}


def _call(name: str) -> Callable[[], object]:
    settings = Settings(default_bucket=BUCKET, default_region=REGION)
    # Read back from its bytes, as a served request is: a built message's fields may be held
    # differently by upb.
    rpc = service_pb2.SubmitMediaJobRequest.FromString(REQUESTS[name].SerializeToString())
    return lambda: validate_submit(rpc, settings)


def run(name: str, calls: int, warmup: int) -> float:
    """µs per call over `calls` calls, after `warmup`."""
    call = _call(name)
    for _ in range(warmup):
        call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def _argv(name: str, warmup: int) -> Callable[[int], list[str]]:
    def argv(calls: int) -> list[str]:
        options = ["--only", name, "--reps", "1", "--calls", str(calls), "--warmup", str(warmup)]
        return ["-m", "bench.validation", *options]

    return argv


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.validation", description=__doc__)
    parser.add_argument("--only", default=",".join(REQUESTS), help="submit,rich")
    parser.add_argument("--calls", type=int, default=2000, help="calls per batch")
    parser.add_argument("--reps", type=int, default=7, help="batches per request")
    parser.add_argument("--warmup", type=int, default=200, help="calls before the batches")
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions per call (valgrind) instead"
    )
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name]
    unknown = set(names) - set(REQUESTS)
    if unknown:
        parser.error(f"unknown requests: {', '.join(sorted(unknown))}")
    for name in names:
        if args.callgrind:
            per_call = callgrind_per_call(_argv(name, args.warmup), args.calls)
            figure = f"{per_call:10,.0f} instructions/call"
        else:
            fastest = min(run(name, args.calls, args.warmup) for _ in range(args.reps))
            figure = f"{fastest:8.2f} µs/call (fastest of {args.reps} x {args.calls})"
        print(f"{name:7s} {figure}", flush=True)


if __name__ == "__main__":
    main()
