"""Run the benchmarks of issues 8 and 17, print one table, write `bench/results/<name>.json`/`.md`.

    .venv/bin/python -m bench.run             # everything, about 17 minutes on 2 cores
    .venv/bin/python -m bench.run --quick     # a smoke run: 1 repetition, short windows
    .venv/bin/python -m bench.run --only signer,memory --profile

Processes: the emulator is pinned to the first CPU; the gateway *and* this load generator share
the second, so the whole client side (SDK threads, or the direct aiohttp client, or the grpc
client plus the gateway) always has exactly one CPU and the emulator never competes with it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS_DIR, Spread, Summary, clean_proxy_environment, pin, ratio

ITEMS = (
    "ratio",
    "submit",
    "read",
    "variants",
    "signer",
    "memory",
    "watch",
    "faults",
    "transcode",
    "tracing",
)
VARIANTS = {
    # name: (uvloop, noop, event_loop); the gateway itself runs on uvloop by default (issue 16)
    "grpc floor (no-op server)": (False, True, ""),
    "grpc floor (no-op server), uvloop": (True, True, ""),
    "gateway, asyncio's loop": (False, False, "asyncio"),
}
REQUIRED = {
    "qcloud_cos": "cos-python-sdk-v5 (the dev extra: pip install -e '.[dev]')",
    "requests": "requests (comes with cos-python-sdk-v5)",
}
OPTIONAL = {
    "uvloop": "uvloop (for the 'variants' and 'ratio' items and --uvloop; or leave those out)",
    "py-spy": "py-spy (only for --profile)",
    "tracing": "OpenTelemetry (the tracing extra, in dev; or leave 'tracing' out of --only)",
}


def check_dependencies(args: argparse.Namespace) -> list[str]:
    missing = [what for module, what in REQUIRED.items() if not importlib.util.find_spec(module)]
    wants_uvloop = args.uvloop or {"variants", "ratio"} & set(args.only.split(","))
    if wants_uvloop and not importlib.util.find_spec("uvloop"):
        missing.append(OPTIONAL["uvloop"])
    if "tracing" in args.only.split(",") and not importlib.util.find_spec("opentelemetry"):
        missing.append(OPTIONAL["tracing"])
    if args.profile:
        from bench.profile import py_spy

        if py_spy() is None:
            missing.append(OPTIONAL["py-spy"])
    return missing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma list of {ITEMS}")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repetition, short windows (options given explicitly still win)",
    )
    parser.add_argument("--reps", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument(
        "--duration", type=float, default=None, help="measured seconds per run (3; quick: 1)"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="unmeasured seconds per run (0.5; quick: 0.3)"
    )
    parser.add_argument("--concurrency", default="1,16,64,256", help="submit concurrencies")
    parser.add_argument("--read-concurrency", default="1,64", help="describe/list concurrencies")
    parser.add_argument("--variant-concurrency", default="1,64", help="for the variants")
    parser.add_argument(
        "--tracing-concurrency", default="1,64", help="submit concurrencies for 'tracing'"
    )
    parser.add_argument("--ratio-concurrency", default="1,64", help="for the 'ratio' item")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="a folder holding an earlier revision's gateway/ (git archive REV gateway | tar -x "
        "-C DIR), measured beside this tree's: 'ratio' (before/after) and 'tracing' (the "
        "revision before tracing)",
    )
    parser.add_argument(
        "--baseline-label", default="baseline", help="what the baseline rows are called"
    )
    parser.add_argument("--memory-calls", type=int, default=100_000)
    parser.add_argument("--memory-seconds", type=float, default=120.0, help="cap on that loop")
    parser.add_argument(
        "--uvloop", action="store_true", help="gateway on uvloop (its default anyway)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under load")
    parser.add_argument("--name", default=None, help="results file name (default: timestamp)")
    return parser


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


async def _with_servers(args: argparse.Namespace, cpus: tuple[int, int], **kw: Any) -> Any:
    """Start a fresh emulator + gateway pair, run `kw['job'](servers)`, stop them."""
    from bench.procs import servers

    job = kw.pop("job")
    kw.setdefault("uvloop", args.uvloop)
    with servers(emulator_cpu=cpus[0], gateway_cpu=cpus[1], **kw) as pair:
        return await job(pair), {
            "emulator_cpus": pair.emulator.cpus,
            "gateway_cpus": pair.gateway.cpus,
            "gateway_loop": pair.gateway.info.get("loop"),
        }


async def run_all(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from bench import memory, micro, throughput
    from bench.procs import default_cpus

    cpus = default_cpus()
    loadgen_cpus = pin(cpus[1])
    results["pinning"] = {
        "emulator": [cpus[0]],
        "gateway": [cpus[1]],
        "loadgen": loadgen_cpus,
        "cpu_count": os.cpu_count(),
    }
    items = set(args.only.split(","))
    plan = throughput.LoadPlan(
        concurrencies=_ints(args.concurrency),
        reps=args.reps,
        duration_s=args.duration,
        warmup_s=args.warmup,
    )

    if "ratio" in items:
        from bench.ratio import run_ratio

        _say("headline (issue 16): gateway CPU per call vs the gRPC floor + the HTTP floor")
        results["ratio"] = await run_ratio(
            replace(plan, concurrencies=_ints(args.ratio_concurrency)),
            cpus,
            args.baseline_src.resolve() if args.baseline_src else None,
            uvloop_gateway=args.uvloop,
        )

    if "read" in items:
        _say("item 2: describe and list (fresh emulator + gateway, 50 finished jobs)")

        async def read(pair: Any) -> Any:
            ids = await throughput.seed_jobs(pair)
            cells = await throughput.run_load(
                pair, replace(plan, concurrencies=_ints(args.read_concurrency)),
                ("describe", "list"), ids,
            )  # fmt: skip
            bodies = await throughput.capture_bodies(pair.emulator_url, ids[0])
            return cells, bodies

        (cells, bodies), seen = await _with_servers(args, cpus, job=read)
        results["read"] = _cells_json(cells)
        results["pinning"]["seen"] = seen
        if "signer" in items:
            results["codec"] = {
                k: asdict(v) for k, v in micro.codec(bodies, reps=5, number=2000).items()
            }

    if "submit" in items:
        _say("item 1: submit throughput and latency (fresh emulator + gateway)")

        async def submit(pair: Any) -> Any:
            cells = await throughput.run_load(pair, plan, ("submit",))
            profiles = {}
            if args.profile:
                from bench.profile import profile_gateway

                for native in (False, True):
                    _say(f"profiling the gateway (py-spy, native={native})")
                    profiles["native" if native else "python"] = await profile_gateway(
                        pair, RESULTS_DIR, seconds=8, concurrency=64, native=native
                    )
            return cells, profiles

        (cells, profiles), seen = await _with_servers(args, cpus, job=submit)
        results["submit"] = _cells_json(cells)
        results["pinning"]["seen"] = seen
        if profiles:
            results["profile"] = profiles

    if "variants" in items:
        variant_plan = replace(
            plan, concurrencies=_ints(args.variant_concurrency), clients=("gateway",)
        )
        results["variants"] = {}
        for name, (uvloop, noop, event_loop) in VARIANTS.items():
            _say(f"variant: {name}")
            cells, _ = await _with_servers(
                args, cpus, uvloop=uvloop, noop=noop, event_loop=event_loop,
                job=lambda pair: throughput.run_load(pair, variant_plan, ("submit",)),
            )  # fmt: skip
            results["variants"][name] = _cells_json(cells)

    if "signer" in items:
        _say("item 3: signer")
        number = 2000 if args.quick else 20000
        signer = micro.signer(reps=5, number=number)
        results["signer"] = {
            "ours_us": asdict(signer["ours_us"]),
            "sdk_us": asdict(signer["sdk_us"]),
            "speedup": signer["speedup"],
        }

    if "watch" in items:
        from bench import watch

        jobs = 200 if args.quick else 1000
        _say(f"item 5: WatchMediaJob on {jobs} jobs (paused, then finished)")
        # The load generator is one client to the gateway: its per-client watcher limit (100
        # by default, a guard against one caller holding every stream) is raised to the item's.
        results["watch"], _ = await _with_servers(
            args, cpus, max_watchers_per_client=jobs,
            job=lambda pair: watch.run_watch(
                pair, jobs=jobs, window_s=5.0, windows=1 if args.quick else 3,
                final_timeout_s=60.0,
            ),
        )  # fmt: skip

    if "faults" in items:
        await _faults(args, cpus, results)

    if "transcode" in items:
        from bench import transcode

        _say("issue 14: a Transcode in the emulator vs the ffmpeg CLI on the same file")
        reps = 1 if args.quick else args.reps
        results["transcode"] = await transcode.measure(reps=reps)
    if "tracing" in items:
        from bench.tracing import run_tracing

        _say("tracing overhead: submit through gateways with tracing off, on (and a baseline)")
        results["tracing"] = await run_tracing(
            replace(plan, concurrencies=_ints(args.tracing_concurrency)),
            cpus,
            args.baseline_src.resolve() if args.baseline_src else None,
        )

    if "memory" in items:
        deadline_s = 3.0 if args.quick else 6.0
        for key, bound in (("memory_in_flight", 0), ("memory_in_flight_unbounded", 2000)):
            what = "default bounds" if not bound else f"in-flight bounds raised to {bound}"
            _say(f"item 4: memory at 1,000 in flight, CI holding each request ({what})")
            results[key], _ = await _with_servers(
                args, cpus, delay_s=deadline_s + 4.0, max_in_flight=bound,
                job=lambda pair: memory.in_flight(pair, deadline_s=deadline_s),
            )  # fmt: skip
        _say(f"item 4: memory over {args.memory_calls} calls (at most {args.memory_seconds} s)")
        results["memory_many"], _ = await _with_servers(
            args, cpus,
            job=lambda pair: memory.many_calls(
                pair, warmup_calls=min(5000, args.memory_calls), max_calls=args.memory_calls,
                max_s=args.memory_seconds,
            ),
        )  # fmt: skip


async def _faults(args: argparse.Namespace, cpus: tuple[int, int], results: dict[str, Any]) -> None:
    from bench import faults

    _say("item 6: submits with 20% of CreateMediaJobs failing (emulator fault injection)")
    results["faults"], _ = await _with_servers(
        args, cpus,
        job=lambda pair: faults.run_faults(
            pair, concurrency=64, reps=args.reps, duration_s=args.duration
        ),
    )  # fmt: skip


def _cells_json(cells: dict[tuple[str, str, int], Summary]) -> list[dict[str, Any]]:
    return [
        {"operation": op, "client": client, "concurrency": conc, **summary.as_dict()}
        for (op, client, conc), summary in cells.items()
    ]


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the table ----------------------------------------------------------------------------------


def _spread(cell: dict[str, Any] | None, key: str, digits: int = 0) -> str:
    if cell is None:
        return "-"
    return Spread(**cell[key]).fmt(digits)


def _find(
    cells: list[dict[str, Any]], operation: str, client: str, concurrency: int
) -> dict[str, Any] | None:
    for cell in cells:
        if (cell["operation"], cell["client"], cell["concurrency"]) == (
            operation,
            client,
            concurrency,
        ):
            return cell
    return None


def _median(cell: dict[str, Any] | None, key: str) -> float:
    return math.nan if cell is None else float(cell[key]["median"])


def _load_table(cells: list[dict[str, Any]], operation: str) -> list[str]:
    concurrencies = sorted({c["concurrency"] for c in cells if c["operation"] == operation})
    clients = [c for c in ("gateway", "direct", "sdk") if any(x["client"] == c for x in cells)]
    letters = {"gateway": "a", "direct": "b", "sdk": "c"}
    head = ["conc"]
    for client in clients:
        head += [f"({letters[client]}) {client} calls/s", "p50 ms", "p99 ms"]
    head += ["a/b calls/s", "a/c calls/s", "gw CPU µs/call", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for conc in concurrencies:
        row = [str(conc)]
        found = {client: _find(cells, operation, client, conc) for client in clients}
        for client in clients:
            cell = found[client]
            row += [
                _spread(cell, "calls_per_s"),
                _spread(cell, "p50_ms", 2),
                _spread(cell, "p99_ms", 1),
            ]
        gw = _median(found.get("gateway"), "calls_per_s")
        row.append(f"{ratio(gw, _median(found.get('direct'), 'calls_per_s')):.2f}")
        row.append(f"{ratio(gw, _median(found.get('sdk'), 'calls_per_s')):.2f}")
        gw_cell = found.get("gateway")
        cpu = gw_cell["cpu_us_per_call"].get("gateway") if gw_cell else None
        row.append(Spread(**cpu).fmt() if cpu else "-")
        row.append(str(sum(int(c["errors"]) for c in found.values() if c)))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _cpu_table(cells: list[dict[str, Any]], operation: str, concurrency: int) -> list[str]:
    lines = [
        f"CPU per call, {operation} at concurrency {concurrency} (µs, median of repetitions):",
        "",
        "| client | gateway | emulator | load generator |",
        "|---|---|---|---|",
    ]
    for client in ("gateway", "direct", "sdk"):
        cell = _find(cells, operation, client, concurrency)
        if cell is None:
            continue
        cpu = cell["cpu_us_per_call"]
        values = [
            f"{cpu[r]['median']:.0f}" if r in cpu else "-"
            for r in ("gateway", "emulator", "loadgen")
        ]
        lines.append(f"| {client} | " + " | ".join(values) + " |")
    return lines


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    meta = results["meta"]
    out.append(
        f"Run `{meta['name']}` ({meta['started']}, {meta['machine']}, Python {meta['python']}, "
        f"{meta['reps']} repetitions x {meta['duration_s']} s; median [min-max]; load average "
        f"{meta.get('loadavg_at_start', ['?'])[0]:.2f} at start)."
    )
    pinning = results.get("pinning", {})
    out.append(
        f"Pinning: emulator CPU {pinning.get('emulator')}, gateway CPU {pinning.get('gateway')}, "
        f"load generator CPU {pinning.get('loadgen')} (seen: {pinning.get('seen')})."
    )
    if "ratio" in results:
        from bench.ratio import render as render_ratio

        out += ["", "### Headline: gateway CPU per call vs its two floors (issue 16)", ""]
        out += render_ratio(results["ratio"], meta.get("baseline_label", "baseline"))
    if "submit" in results:
        out += ["", "### 1. Submit (MediaInfo), closed loop", ""]
        out += _load_table(results["submit"], "submit")
        conc = 64 if _find(results["submit"], "submit", "gateway", 64) else None
        if conc:
            out += ["", *_cpu_table(results["submit"], "submit", conc)]
    if "read" in results:
        out += ["", "### 2. Describe (one finished job) and list (10 jobs)", ""]
        for operation in ("describe", "list"):
            out += [f"{operation}:", "", *_load_table(results["read"], operation), ""]
    if "variants" in results:
        out += [
            "",
            "### Variants: submit through gRPC only (gateway client), vs the gateway above",
            "",
            "| variant | conc | calls/s | p50 ms | p99 ms | server CPU µs/call |",
            "|---|---|---|---|---|---|",
        ]
        rows = dict(results["variants"])
        if "submit" in results:
            rows = {"gateway (as in 1a)": results["submit"], **rows}
        for name, cells in rows.items():
            for cell in cells:
                if cell["client"] != "gateway" or cell["concurrency"] not in _ints(
                    meta.get("variant_concurrency", "1,64")
                ):
                    continue
                cpu = cell["cpu_us_per_call"].get("gateway")
                out.append(
                    f"| {name} | {cell['concurrency']} | {_spread(cell, 'calls_per_s')} "
                    f"| {_spread(cell, 'p50_ms', 2)} | {_spread(cell, 'p99_ms', 1)} "
                    f"| {Spread(**cpu).fmt() if cpu else '-'} |"
                )
    if "signer" in results:
        s = results["signer"]
        out += [
            "",
            "### 3. Signer (µs per Authorization, POST /jobs with 4 signed headers)",
            "",
            "| ours | SDK CosS3Auth | speed-up |",
            "|---|---|---|",
            f"| {Spread(**s['ours_us']).fmt(1)} | {Spread(**s['sdk_us']).fmt(1)} "
            f"| {s['speedup']:.1f}x |",
        ]
    if "codec" in results:
        out += ["", "Codec (µs per call):", "", "| step | µs |", "|---|---|"]
        out += [f"| {k} | {Spread(**v).fmt(1)} |" for k, v in results["codec"].items()]
    if "memory_in_flight" in results:
        out += ["", "### 4. Gateway memory (RSS, MiB)", ""]
        for key, what in (
            ("memory_in_flight", "default bounds"),
            ("memory_in_flight_unbounded", "in-flight bounds raised to 2000"),
        ):
            if key not in results:
                continue
            m = results[key]
            out.append(
                f"- {what}: at rest {m['rest_mb']:.1f}; {m['calls']} submits started at once, "
                f"CI holding each (deadline {m['deadline_s']} s): peak {m['peak_mb']:.1f}; "
                f"after they ended {m['after_mb']:.1f}; outcomes {m['outcomes']}"
            )
    if "memory_many" in results:
        m = results["memory_many"]
        out.append(
            f"- many calls: at rest {m['rest_mb']:.1f}; after {m['warmup_calls']} warm-up calls "
            f"{m['warmed_mb']:.1f}; after {m['calls']} more calls in {m['seconds']} s "
            f"{m['after_mb']:.1f} = {m['growth_vs_warmed_pct']:+.1f}% vs warmed "
            f"({m['growth_vs_rest_pct']:+.1f}% vs rest, {m['bytes_per_call']:.0f} B/call); "
            f"errors {m['errors']}"
        )
    if "watch" in results:
        w = results["watch"]
        out += [
            "",
            f"### 5. WatchMediaJob: {w['jobs']} jobs, one stream each over {w['channels']} "
            "connections",
            "",
            f"- upstream DescribeMediaJob requests per second while no job changes, per "
            f"{w['window_s']:.0f} s window: {w['describes_per_s']} (a client polling each job "
            f"once a second would send {w['naive_polling_per_s_at_1s']})",
            f"- gateway RSS {w['rss_rest_mb']:.1f} MiB before, {w['rss_watching_mb']:.1f} MiB "
            "with every stream open",
            f"- after the jobs finish: {w['final_received']} of {w['jobs']} streams got the final "
            f"state, p50 {w['final_p50_s']:.2f} s, p99 {w['final_p99_s']:.2f} s, max "
            f"{w['final_max_s']:.2f} s (polling only, no callbacks); stream failures "
            f"{w['failures']}" + (f" (first: {w['first_failure']})" if w["failures"] else ""),
        ]
    if "faults" in results:
        f = results["faults"]
        rates = ", ".join(f"{k} {v:.0%}" for k, v in f["faults"].items())
        out += [
            "",
            f"### 6. Submit with 20% of CreateMediaJobs failing ({rates}), "
            f"concurrency {f['concurrency']}, each call on its own input object unless 'hot'",
            "",
            "| client | calls/s | p50 ms | p99 ms | failed calls | CI attempts/call "
            "| reconcile lists/call | jobs per successful call | duplicate jobs per 1000 calls |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for client, c in f["clients"].items():
            row = [
                client,
                Spread(**c["calls_per_s"]).fmt(),
                Spread(**c["p50_ms"]).fmt(2),
                Spread(**c["p99_ms"]).fmt(1),
                Spread(**c["error_rate"]).fmt(1, scale=100) + " %",
                Spread(**c["attempts_per_call"]).fmt(2),
                Spread(**c["lists_per_call"]).fmt(2),
                Spread(**c["jobs_per_success"]).fmt(3),
                Spread(**c["duplicates_per_1000"]).fmt(1),
            ]
            out.append("| " + " | ".join(row) + " |")
    if "transcode" in results:
        from bench.transcode import render as render_transcode

        out += ["", "### Transcode: the emulator vs the ffmpeg CLI (issue 14)", ""]
        out.append(render_transcode(results["transcode"]))
    if "tracing" in results:
        from bench.tracing import render as render_tracing

        out += [
            "",
            "### Tracing overhead: submit, gateway CPU per call (tracing off, on, baseline)",
            "",
            *render_tracing(results["tracing"], _ints(meta.get("tracing_concurrency", "1,64"))),
        ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # --quick picks short defaults; what the caller gave explicitly is kept (the smoke test
    # asks for even shorter windows than --quick's).
    for name, full, quick in (("reps", 3, 1), ("duration", 3.0, 1.0), ("warmup", 0.5, 0.3)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.quick:
        args.memory_calls, args.memory_seconds = min(args.memory_calls, 5000), 20.0
    # grpc's C core logs every GOAWAY of a closed channel at INFO; keep the table readable.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    missing = check_dependencies(args)
    if missing:
        print("bench: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    clean_proxy_environment()
    name = args.name or time.strftime("run-%Y%m%d-%H%M%S")
    results: dict[str, Any] = {
        "meta": {
            "name": name,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(),
            "reps": args.reps,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "uvloop_gateway": args.uvloop,
            "variant_concurrency": args.variant_concurrency,
            "tracing_concurrency": args.tracing_concurrency,
            "baseline_label": args.baseline_label,
            "argv": list(sys.argv[1:] if argv is None else argv),
            # Other work on the machine shows here: ratios hold better than absolute figures.
            "loadavg_at_start": os.getloadavg(),
        }
    }
    started = time.monotonic()
    try:
        asyncio.run(run_all(args, results))
    finally:
        results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        results["meta"]["loadavg_at_end"] = os.getloadavg()
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(results, indent=1, default=str))
    table = render(results)
    (RESULTS_DIR / f"{name}.md").write_text(table)
    print(table)
    print(f"wrote {RESULTS_DIR / name}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
