"""Who may call the service: the caller list of the auth file, its parsing and the
rule that admits a call (`callers.Callers`, `callers.parse_callers`). No grpc:
`service.api.auth` reads the file and applies these rules to each call."""
