"""A strict local emulator of Tencent Cloud Infinite's media-job API (and COS's videoinfo).

An aiohttp server on loopback that speaks CI's XML API, verifies COS signatures as CI does,
answers with CI's error bodies and codes, and runs MediaInfo jobs with a real media probe over a
local folder per bucket. Tests, benchmarks and the demo stand on it, so where CI would refuse a
request it refuses it the same way. Module map:

    config     BucketConfig, Credential, EmulatorConfig (the injectable probe and clock)
    server     start_emulator / RunningEmulator / serve;  app: create_app
    frontend   the per-request pipeline;  hosts: Host -> bucket/service;  auth: signatures
    handlers   the endpoints;  submit / listing / body: request validation
    state      jobs, queues, counters, test controls;  scheduler: runs jobs;  queues, jobs
    xmlbuild   CI's XML from plain data;  errors: the code table;  hooks: raw request seam
    faults     FaultSpec / FaultPlan: seeded errors, latency, resets, commit-then-drop
    admin      /_emulator/* control surface;  cli: `python -m gateway.emulator`
"""

from gateway.emulator.app import create_app
from gateway.emulator.config import BucketConfig, Credential, EmulatorConfig
from gateway.emulator.errors import CiError
from gateway.emulator.faults import FaultKind, FaultPlan, FaultSpec
from gateway.emulator.hooks import RequestHook
from gateway.emulator.hosts import Service, Target
from gateway.emulator.jobs import JobState
from gateway.emulator.queues import QueueState
from gateway.emulator.server import RunningEmulator, serve, start_emulator
from gateway.emulator.state import EmulatorState

__all__ = [
    "BucketConfig",
    "CiError",
    "Credential",
    "EmulatorConfig",
    "EmulatorState",
    "FaultKind",
    "FaultPlan",
    "FaultSpec",
    "JobState",
    "QueueState",
    "RequestHook",
    "RunningEmulator",
    "Service",
    "Target",
    "create_app",
    "serve",
    "start_emulator",
]
