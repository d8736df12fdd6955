"""Pieces every provider sandbox shares, written once: the HTTP server plumbing, the background
runner, queued faults, the request log, epoch-aligned rate windows, the rate-limit refusals,
the control endpoints that mean the same in every sandbox, and the simulated sending: the clock
tests move on (clock.py), flows and their messages (flows.py, rendering.py) and their control
endpoints (flow_control.py); the webhooks a sandbox sends (webhooks.py: the background sender,
its delivery log) and the engagements tests tell it of (engagement.py)."""
