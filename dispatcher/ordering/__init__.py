"""The ordering state the replicas share through NATS KV: `lease.Lease` (one replica
processes ordered work), `fences.Fences` (the newest change applied per person and
aspect, so an older one is never applied after it) and `erasure.ErasureMarks` (when each
erasure was accepted, so no event accepted before it reaches the provider)."""
