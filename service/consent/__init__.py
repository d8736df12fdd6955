"""Consent: the append-only audit trail, newsletter subscription and unsubscribe.
The use cases and their SQL return `ConsentView`s (no ORM rows): `rules` the consent
records, `unsubscribing` the newsletter and unsubscribes, `reported` the withdrawals
a provider reported, `snapshots` the consent state the provider is sent;
`handlers.ConsentHandlers` turns the consent RPCs into those calls."""
