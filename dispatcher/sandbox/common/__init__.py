"""Pieces every provider sandbox shares: the HTTP server plumbing, the background runner,
queued faults, the request log's encoding and epoch-aligned rate windows."""
