"""Behavioural events: `rules` validates them and hands them to an `EventSink`,
`handlers.EventHandlers` turns TrackEvent(s) into those calls (`payload_json`
converts their payloads), `event_log` writes them to PostgreSQL and `fast_path`
to the bus first."""
