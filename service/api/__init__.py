"""The gRPC boundary: the server (`server.create_server`), the thin servicer that
hands each RPC to its feature's handler (`servicer.MarketingServicer`), the
translation of service errors into google.rpc statuses (`errors.rpc_method`,
`status_table`), request decoding, bearer-token auth and TLS. The only package
of the service that imports grpc."""
