"""The service's background workers, run by `marketing-service serve` (unless
MARKETING_BUS_WORKERS=false) or by `marketing-service work`: `relay` (outbox rows
to the bus), `event_log_writer` (accepted events into the event log),
`result_recorder` (the dispatcher's results into the outbox and the event log),
`sync_driver` (a full contact sync's chunks to the bus) and
`sync_result_recorder` (their results into the sync);
`runner.BusWorkers` starts and stops them together."""
