"""The delivery dispatcher: takes work from NATS JetStream to the provider (next milestone)."""
