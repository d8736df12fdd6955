"""The NATS JetStream bus: topology shared with the dispatcher, the outbox relay,
the fast path for events and the service's own consumers."""
