"""Delivery: the workers and what they share. `events.EventsWorker` sends behavioural
events in bulk (any replica, no order); `contacts.ContactsWorker` applies profile, consent,
list and erasure work in order under its lease, `enrolments.EnrolmentsWorker` flow
enrolment changes under a lease of their own (both `ordered.OrderedWorker`s; enrolment
changes are read and planned in `enrolment_changes`). All pass every provider call through
`gate.ProviderGate`, keep held messages alive (`keepalive`), retry on `retry`'s schedule,
narrow a refused bulk call down to the refused items (`narrowing`), read payloads into
provider value types (`translate`) and report results and dead letters (`outcomes`)."""
