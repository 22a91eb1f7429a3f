"""Job lifecycles beyond one CI call: exactly-once submit, tracking (watch/wait), CI's
callbacks, and the state replicas share (fan-out, the Redis submit store)."""
