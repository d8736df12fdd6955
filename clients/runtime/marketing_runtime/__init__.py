"""What the service and the dispatcher share, and nothing either owns alone
(distribution `marketing-runtime`: no gRPC, no database drivers).

The bus: `topology` (streams, subjects, consumers), `envelope` (building and
reading the typed messages of `marketing.bus.v1`), `kinds` (each Kind's name and
payload field), `legacy` (messages of the previous release), `connection` (a
Bus that reconnects), `publisher` (batched publish), `pull`, `acks`,
`consumer_loop`. The process: `clock` (Clock, Sleep), `timestamps`,
`event_loop`, `gc_tuning`, `metrics_endpoint`, `settings` (ProcessSettings)."""
