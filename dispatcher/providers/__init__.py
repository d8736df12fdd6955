"""Provider clients behind one interface. `base` holds the `Provider` protocol, the value
types it takes (Profile, TrackedEvent, ConsentChange, ConsentState), each operation's
`OperationLimits` and the `BulkCall` a consent plan is made of; `errors` the exceptions
every client raises (retryable or permanent). One package per provider: `klaviyo` (and
ActiveCampaign next); the workers know none of them."""
