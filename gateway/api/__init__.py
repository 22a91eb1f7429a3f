"""The gRPC face of the gateway: servicers, request validation, interceptors, health, the ops
port and metrics, and the server that assembles them."""
