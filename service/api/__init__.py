"""The gRPC boundary: servicer, message conversion and error translation."""
