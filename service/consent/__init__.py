"""Consent: the append-only audit trail, newsletter subscription and unsubscribe.
`rules` holds the use cases and their SQL and returns `ConsentView`s (no ORM rows);
`handlers.ConsentHandlers` turns the consent RPCs into those calls."""
