# ci-gateway container image: `docker build -t ci-gateway .`
#
# Two stages: the build stage installs the project into a virtual environment; the runtime
# stage copies only that environment onto a clean slim base. No compiler, pip cache, source
# tree or build backend reaches the final image (every dependency ships a manylinux wheel).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The venv gets no pip of its own: the base image's pip installs into it (`--python`).
RUN python -m venv --without-pip /opt/ci-gateway
COPY pyproject.toml README.md ./
# The service only: the CI emulator (ci_emulator/, PyAV) is a development tool and stays out.
COPY gateway ./gateway
# pip also compiles the bytecode, so a read-only root filesystem costs nothing at run time.
# The `tracing` extra (OpenTelemetry) too, so the image can trace: it stays off until
# CI_GATEWAY_TRACING_ENABLED=true.
RUN pip install --no-cache-dir --python /opt/ci-gateway/bin/python './[tracing]'

FROM python:3.11-slim-bookworm
COPY --from=build /opt/ci-gateway /opt/ci-gateway
# Listen on every interface inside the container; the ops port (metrics, /livez, /readyz) and
# the plaintext health port (grpc.health.v1 only, for kubelet's gRPC probes) are on.
ENV PATH=/opt/ci-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CI_GATEWAY_LISTEN=0.0.0.0:50051 \
    CI_GATEWAY_METRICS_LISTEN=0.0.0.0:9090 \
    CI_GATEWAY_HEALTH_LISTEN=0.0.0.0:8081 \
    CI_GATEWAY_LOG_FORMAT=json
# A numeric, unprivileged user: Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
# gRPC API, CI job callbacks, gRPC health (probes), Prometheus metrics and HTTP probes.
EXPOSE 50051 8080 8081 9090
# Exec form, no shell: the gateway is PID 1 and receives SIGTERM itself (it installs handlers).
ENTRYPOINT ["ci-gateway", "serve"]
