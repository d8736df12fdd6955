"""The delivery dispatcher: takes work from NATS JetStream to the provider, in
bulk, acknowledging only what the provider accepted (see README, "How delivery works").
`main` runs a replica (`marketing-dispatcher`) with its `settings` and `metrics`;
`delivery` holds the workers, `ordering` the state replicas share in NATS KV,
`providers` the provider interface and its clients, `sandbox` a local stand-in for
Klaviyo. It imports only the shared runtime (`marketing_runtime`), never `service`."""
