"""A strict local emulator of Tencent Cloud Infinite's media-job API (and COS's videoinfo).

An aiohttp server on loopback that speaks CI's XML API, verifies COS signatures as CI does,
answers with CI's error bodies and codes, runs MediaInfo jobs with a real media probe and every
typed media kind (Transcode, Snapshot, Animation, Concat, ...) with FFmpeg in worker processes
over a local folder per bucket, keeps CI's queues, templates and workflows (and runs them), calls
back when jobs and workflow runs end, and injects faults on demand. Tests, benchmarks and the
demo stand on it, so where CI would refuse a request it refuses it the same way.

Addressing a bucket (see `hosts`):

* **Host header**, as CI sees it: connect to the emulator's `http://127.0.0.1:<port>` and send
  (and sign) `Host: <bucket>.ci.<region>.myqcloud.com` for the job, queue and `/mediainfo` API,
  or `Host: <bucket>.cos.<region>.myqcloud.com` for `GET /<key>?ci-process=videoinfo`. An HTTP
  client may equally use the emulator as its proxy for `http://<bucket>.ci.<region>.myqcloud.com`
  (absolute-form targets; how the official SDK is pointed at it unchanged).
* **Path style**, for clients that cannot set Host:
  `http://127.0.0.1:<port>/_path/<bucket>/<region>/<ci|cos>/<path>` serves `/<path>` of that
  bucket's host; the signature covers `/<path>` and whatever Host the client really sent.

Run it with `python -m ci_emulator` or `ci-gateway emulator` (`--help` shows both forms
and the admin surface), or in a test's loop with `start_emulator(EmulatorConfig(...))`.

Module map:

    config     BucketConfig, Credential, QueueConfig, CallbackSettings, EmulatorConfig
    server     start_emulator / RunningEmulator / serve;  app: create_app
    frontend   the per-request pipeline;  hosts: Host -> bucket/service;  auth: signatures
    handlers   the endpoints;  submit / listing / queue_api / body: request validation
    state      jobs, queues, counters, test controls;  scheduler: runs jobs;  queues, jobs
    job_index  per-bucket listing indexes (tag, object, queue, state)
    callbacks  where a finished job reports and the delivery;  callback_body: XML/JSON bodies
    resources  templates, workflows and runs (EmulatorState.resources);  resource_api: their
               endpoints;  templates: storage, CI's shapes, resolution into submitted jobs;
               workflows: definitions, graph checks, runs (WorkflowRunner), WorkflowFinish
    faults     FaultSpec / FaultPlan: seeded errors, latency, resets, commit-then-drop
    xmlbuild   CI's XML from plain data;  errors: the code table;  hooks: raw request seam
    admin      /_emulator/* control surface;  cli, config_file: standalone use
    probe      real media info via PyAV;  probe_types: MediaInfo, Probe;  probe_cache: reuse
               a file's MediaInfo;  samples: generated media for tests and the demo
    media/     the media job kinds run for real (validation, worker processes, FFmpeg);
               media_jobs: one media job's run for the scheduler (start, progress, publish)
    xmlread    reading request XML
"""

from ci_emulator.app import create_app
from ci_emulator.callbacks import CallbackDelivery
from ci_emulator.config import (
    BucketConfig,
    CallbackSettings,
    Credential,
    EmulatorConfig,
    QueueConfig,
)
from ci_emulator.errors import CiError
from ci_emulator.faults import FaultKind, FaultPlan, FaultSpec
from ci_emulator.hooks import RequestHook
from ci_emulator.hosts import Service, Target
from ci_emulator.jobs import JobState
from ci_emulator.queues import QueueState
from ci_emulator.server import RunningEmulator, serve, start_emulator
from ci_emulator.state import EmulatorState

__all__ = [
    "BucketConfig",
    "CallbackDelivery",
    "CallbackSettings",
    "CiError",
    "Credential",
    "EmulatorConfig",
    "EmulatorState",
    "FaultKind",
    "FaultPlan",
    "FaultSpec",
    "JobState",
    "QueueConfig",
    "QueueState",
    "RequestHook",
    "RunningEmulator",
    "Service",
    "Target",
    "create_app",
    "serve",
    "start_emulator",
]
