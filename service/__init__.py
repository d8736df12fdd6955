"""The marketing service: a gRPC API over PostgreSQL that queues work for the provider.

Laid out by feature: `contacts`, `consent`, `events` and `deliveries` each hold
their use cases and SQL (`rules`) and their RPC handlers (`handlers`); `api` is
the gRPC boundary, `access` who may call, `common` what every feature shares,
`storage` the tables and transactions, `workers` the background work on the
bus. `main` is the entry point (`marketing-service`); nothing is exported here.
"""
