"""Klaviyo behind the `Provider` interface: `client.KlaviyoClient` (HTTP and error
translation), `bodies` (JSON:API request bodies and which item an error points at),
`consent_calls` (the four consent calls that bring a person to our state), `lists_calls`
(finding a list by name, and the calls that put people into lists and take them out),
`campaigns` (a campaign send: its template in Klaviyo's syntax, its bodies and answers) and
`limits` (what one bulk call may carry: items, bytes, the suppression batch size)."""
