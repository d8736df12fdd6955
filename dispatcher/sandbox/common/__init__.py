"""Pieces every provider sandbox shares, written once: the HTTP server plumbing, the background
runner, queued faults, the request log, epoch-aligned rate windows, the rate-limit refusals and
the control endpoints that mean the same in every sandbox."""
