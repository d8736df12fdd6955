"""Work for the provider: `outbox` writes outbox rows in the transaction of the
change, `results` applies the dispatcher's results, `queue` counts the queue and
`rules` lists and re-drives failed deliveries (as `FailedDelivery` views);
`handlers.DeliveryHandlers` serves the queue and failed-delivery RPCs."""
