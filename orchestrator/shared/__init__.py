"""State shared by orchestrator replicas through Redis (``REDIS_URL``): rate limits,
realtime session slots, one live socket per session, key revocations.

Without ``REDIS_URL`` nothing here is built and every replica keeps its state in process.
With it, a Redis outage falls back to that in-process state until Redis answers again
(:mod:`.connection`)."""
