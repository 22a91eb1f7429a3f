"""Everything between a validated request and CI: the XML codec, the COS signature, the HTTP
transport, retries, and the client that runs build -> sign -> send -> parse -> map per attempt.
Nothing here imports grpc's server side."""
