"""What every feature shares: field validation (`validation`), page sizes, signed
page tokens and the one page query (`pagination.PageTokens`, `pagination.read_page`),
and the protobuf value conversions handlers use (`conversions`: times, Structs,
optional fields)."""
