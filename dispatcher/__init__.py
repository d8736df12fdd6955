"""The delivery dispatcher: takes work from NATS JetStream to the provider, in
bulk, acknowledging only what the provider accepted (see README, "How delivery works")."""
