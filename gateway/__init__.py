"""ci-gateway: a gRPC gateway for Tencent Cloud Infinite media jobs."""
