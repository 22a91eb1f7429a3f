"""ci-gateway: a gRPC gateway for Tencent Cloud Infinite media jobs."""

import os

# grpc's C core writes log lines of its own to stderr, beside the gateway's JSON ones, from
# INFO up unless told otherwise; at INFO it writes one for every failed TLS handshake, so
# anyone who sends the TLS port a few bytes of something else (an HTTP probe, a plaintext gRPC
# client, a scanner) adds a line to the log, as often as they like. grpc reads the level once,
# when it is first imported: so here, before any module of the package imports it. An operator
# who wants grpc's own detail sets GRPC_VERBOSITY (INFO, DEBUG) in the environment.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
