"""`ci-gateway jobs submit|describe|list|cancel|media-info` against a real gateway and emulator:
tables for people, the response messages with `--json`, and each failure's exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from google.protobuf import json_format

from ci_emulator.server import RunningEmulator
from gateway._proto import media_pb2
from gateway.console.exits import MEANING, ExitCode
from gateway.jobs.describe import MAX_JOB_IDS_PER_RPC
from tests.conftest import SAMPLE_HEIGHT, SAMPLE_KEY, SAMPLE_WIDTH
from tests.console.conftest import Jobs
from tests.integration.test_kinds_json import readme_examples

ROOT = Path(__file__).resolve().parents[2]


async def submit(jobs: Jobs, *argv: str, stdin: str = "") -> str:
    done = await jobs("submit", *argv, "--json", stdin=stdin)
    assert done.code == ExitCode.OK, done.err
    job_id: str = json.loads(done.out)["jobs_detail"]["job_id"]
    return job_id


def rows(table: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in table.strip().splitlines()]


async def test_submit_prints_the_job_and_wait_its_media_info(jobs: Jobs) -> None:
    done = await jobs("submit", "--object", SAMPLE_KEY)
    assert done.code == ExitCode.OK, done.err
    header, row = rows(done.out)
    assert header[:4] == ["JOB ID", "TAG", "STATE", "PROGRESS"]
    job_id = row[0]
    assert row[1] == "MediaInfo" and SAMPLE_KEY in row

    finished = await jobs("wait", job_id)
    assert finished.code == ExitCode.OK, finished.err
    table, media = finished.out.split(f"\nmedia info of {job_id}:\n")
    assert rows(table)[1][:4] == [job_id, "MediaInfo", "Success", "100%"]
    (video,) = [line for line in media.splitlines() if line.startswith("video")]
    assert "h264" in video and f"{SAMPLE_WIDTH}x{SAMPLE_HEIGHT}" in video
    assert any(line.startswith("audio") and "aac" in line for line in media.splitlines())


async def test_json_is_the_response_message(jobs: Jobs) -> None:
    job_id = await submit(jobs, "--object", SAMPLE_KEY, "--user-data", "json please")
    done = await jobs("wait", job_id, "--json")
    assert done.code == ExitCode.OK
    job = json.loads(done.out)["jobs_detail"]
    assert (job["job_id"], job["state"], job["tag"]) == (job_id, "JOB_STATE_SUCCESS", "MediaInfo")
    assert job["operation"]["user_data"] == "json please"
    assert job["operation"]["media_info"]["stream"]["video"][0]["codec_name"] == "h264"

    described = json.loads((await jobs("describe", job_id, "--json")).out)
    assert list(described) == ["jobs_detail"] and described["jobs_detail"][0] == job


async def test_a_request_as_json_with_flags_on_top_and_a_request_id(jobs: Jobs) -> None:
    request = {
        "tag": "MediaInfo",
        "input": {"object": SAMPLE_KEY},
        "operation": {"user_data": "from the file", "job_level": 1},
    }
    argv = ("--request-json", "-", "--user-data", "from the flag", "--request-id", "order-17")
    first = await submit(jobs, *argv, stdin=json.dumps(request))
    again = await jobs("submit", *argv, "--json", stdin=json.dumps(request))
    assert json.loads(again.out)["jobs_detail"]["job_id"] == first  # exactly once
    described = json.loads((await jobs("describe", first, "--json")).out)["jobs_detail"][0]
    assert described["operation"]["user_data"] == "from the flag"
    assert described["operation"]["job_level"] == 1


async def test_submit_multi_makes_one_job_per_operation_exactly_once(jobs: Jobs) -> None:
    request = {
        "input": {"object": SAMPLE_KEY},
        "operation": [
            {"tag": "MediaInfo", "user_data": "first"},
            {"tag": "MediaInfo", "user_data": "second"},
        ],
    }
    argv = ("submit-multi", "--request-json", "-", "--request-id", "batch-9", "--json")
    first = await jobs(*argv, stdin=json.dumps(request))
    assert first.code == ExitCode.OK, first.err
    made = json.loads(first.out)["jobs_detail"]
    assert [job["operation"]["user_data"] for job in made] == ["first", "second"]
    again = await jobs(*argv, stdin=json.dumps(request))  # the same request_id: the same jobs
    assert [job["job_id"] for job in json.loads(again.out)["jobs_detail"]] == [
        job["job_id"] for job in made
    ]
    table = await jobs("submit-multi", "--request-json", "-", stdin=json.dumps(request))
    assert table.code == ExitCode.OK and len(rows(table.out)) == 3  # header + a row per job
    not_multi = await jobs("submit-multi", "--request-json", "-", stdin='{"tag": 1}')
    assert not_multi.code == ExitCode.USAGE
    assert "stdin is not a MultiOperationRequest" in not_multi.err


async def test_describe_shows_known_jobs_and_names_unknown_ones(jobs: Jobs) -> None:
    job_id = await submit(jobs, "--object", SAMPLE_KEY)
    unknown = "j" + "0" * 32
    done = await jobs("describe", job_id, unknown)
    assert done.code == ExitCode.REFUSED
    assert rows(done.out)[1][0] == job_id
    assert done.err.strip() == f"ci-gateway jobs describe: no job {unknown}"


async def test_list_pages_and_filters(jobs: Jobs, emulator: RunningEmulator) -> None:
    emulator.state.pause_scheduling()
    ids = {await submit(jobs, "--object", SAMPLE_KEY) for _ in range(3)}

    page = await jobs("list", "--size", "2")
    assert page.code == ExitCode.OK, page.err
    assert len(rows(page.out)) == 3  # header + 2
    token = re.fullmatch(r"more jobs: --next-token (\S+) \(or --all\)\n", page.err)
    assert token is not None
    rest = await jobs("list", "--size", "2", "--next-token", token.group(1), "--json")
    listed = {row[0] for row in rows(page.out)[1:]} | {
        job["job_id"] for job in json.loads(rest.out)["jobs_detail"]
    }
    assert listed == ids

    everything = await jobs("list", "--size", "2", "--all", "--state", "submitted", "--json")
    assert {job["job_id"] for job in json.loads(everything.out)["jobs_detail"]} == ids
    assert json.loads((await jobs("list", "--state", "success", "--json")).out) == {}


async def test_cancel_a_waiting_job_but_not_a_finished_one(
    jobs: Jobs, emulator: RunningEmulator
) -> None:
    emulator.state.pause_scheduling()
    waiting = await submit(jobs, "--object", SAMPLE_KEY)
    done = await jobs("cancel", waiting)
    assert (done.code, done.out) == (ExitCode.OK, f"cancelled {waiting}\n")

    emulator.state.resume_scheduling()
    finished = await submit(jobs, "--object", SAMPLE_KEY)
    assert (await jobs("wait", finished)).code == ExitCode.OK
    late = await jobs("cancel", finished)
    assert late.code == ExitCode.REFUSED
    message, detail = late.err.splitlines()
    assert message.startswith("ci-gateway jobs cancel: INVALID_ARGUMENT: CI error InvalidArgument")
    assert detail.startswith("  reason UPSTREAM_REJECTED, ci_code InvalidArgument, ci_request_id ")


async def test_media_info_probes_an_object(jobs: Jobs) -> None:
    done = await jobs("media-info", SAMPLE_KEY)
    assert done.code == ExitCode.OK, done.err
    assert done.out.startswith("FORMAT")
    assert f"{SAMPLE_WIDTH}x{SAMPLE_HEIGHT}" in done.out
    as_json = json.loads((await jobs("media-info", SAMPLE_KEY, "--json")).out)
    assert as_json["media_info"]["stream"]["video"][0]["width"] == str(SAMPLE_WIDTH)


async def test_the_gateways_refusal_names_the_bad_fields(jobs: Jobs) -> None:
    done = await jobs("submit", "--object", SAMPLE_KEY, "--bucket", "Not_A_Bucket")
    assert (done.code, done.out) == (ExitCode.REFUSED, "")
    first, *details = done.err.splitlines()
    assert first.startswith("ci-gateway jobs submit: INVALID_ARGUMENT: ")
    assert any(line.startswith("  bucket: ") for line in details), done.err
    assert any(line.startswith("  reason ") for line in details), done.err


async def test_usage_errors_exit_2_before_any_call(jobs: Jobs, tmp_path: Path) -> None:
    nothing = await jobs("submit")
    assert nothing.code == ExitCode.USAGE
    assert "give --object KEY, or --request-json FILE|-" in nothing.err
    not_json = await jobs("submit", "--request-json", "-", stdin="{not json")
    assert not_json.code == ExitCode.USAGE and "stdin is not a Request" in not_json.err
    missing = await jobs("submit", "--request-json", str(tmp_path / "none.json"))
    assert missing.code == ExitCode.USAGE and "cannot read" in missing.err
    # PowerShell's `>` writes UTF-16: a usage error naming the file, not a traceback.
    utf16 = tmp_path / "request.json"
    utf16.write_bytes('{"input": {"object": "a"}}'.encode("utf-16"))
    for command in ("submit", "submit-multi"):
        wide = await jobs(command, "--request-json", str(utf16))
        assert (wide.code, wide.err) == (
            ExitCode.USAGE,
            f"ci-gateway jobs {command}: {utf16} is not UTF-8 text\n",
        )
    bad_state = await jobs("list", "--state", "finished")
    assert bad_state.code == ExitCode.USAGE and "invalid choice" in bad_state.err
    assert (await jobs()).code == ExitCode.USAGE
    # Seconds above 0 and finite (`inf` went out as a deadline and came back as "cannot reach
    # the gateway"), said so (not "invalid _positive value"); --max-pages 0 printed no page.
    for flags in (["--timeout", "soon"], ["--timeout", "inf"], ["--all", "--max-pages", "0"]):
        bad = await jobs("list", *flags)
        assert bad.code == ExitCode.USAGE, (flags, bad.err)
        assert f"argument {flags[-2]}: must be " in bad.err and "_positive" not in bad.err


async def test_a_grpcurl_body_is_refused_saying_what_to_give(jobs: Jobs) -> None:
    """The README's job examples are SubmitMediaJob requests for grpcurl (`{"request": ...}`);
    handed to `--request-json` as they are, the answer was protobuf's `no field named
    "request"` and a list of camelCase names, which did not say what the flag wants."""
    body = readme_examples()[0]  # transcode.json
    for command, what in (("submit", "Request"), ("submit-multi", "MultiOperationRequest")):
        done = await jobs(command, "--request-json", "-", stdin=body)
        assert (done.code, done.out) == (ExitCode.USAGE, "")
        assert done.err.startswith(
            f'ci-gateway jobs {command}: stdin is not a {what}: it has "request" at the top'
        )
        assert "`jq .request FILE`" in done.err and len(done.err.splitlines()) == 1
    # What the message says to give is a Request.
    json_format.Parse(json.dumps(json.loads(body)["request"]), media_pb2.Request())


async def test_describe_help_states_the_gateways_bound(jobs: Jobs) -> None:
    """`describe --help` said "up to 10" (the ids of one request to CI) while the RPC takes
    100 and splits them itself."""
    done = await jobs("describe", "--help")
    assert done.code == ExitCode.OK
    assert f"show jobs by id (up to {MAX_JOB_IDS_PER_RPC})" in done.out


async def test_help_lists_the_commands_exit_codes_and_environment(jobs: Jobs) -> None:
    done = await jobs("--help")
    assert done.code == ExitCode.OK
    for word in ("submit", "describe", "list", "watch", "wait", "cancel", "media-info"):
        assert word in done.out
    assert "exit codes:" in done.out and "CI_GATEWAY_TOKEN" in done.out


def test_the_readme_lists_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- exit-codes:start")[1].split("-->", 1)[1].split("<!-- exit-codes")[0]
    documented = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", table, re.M))
    assert documented == {str(code.value): MEANING[code] for code in ExitCode}
