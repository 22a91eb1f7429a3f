"""Who may call the gateway and what each caller may do: the access file, TLS/mTLS, bearer
tokens, per-client policy and rate limits, enforced by one server interceptor."""
