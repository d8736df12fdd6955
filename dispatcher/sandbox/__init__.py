"""Local stand-ins for the providers' APIs, for tests and `make up`: the Klaviyo sandbox
(klaviyo/) and the ActiveCampaign sandbox (activecampaign/), both on the plumbing in common/
(HTTP server, background runner, faults, request log, rate windows, the simulated sending of
flows' messages, the webhooks they send), with the same control endpoints where they mean the
same (/_sandbox/requests, /_sandbox/faults, /_sandbox/throttled; /_sandbox/clock,
/_sandbox/flows, /_sandbox/messages; /_sandbox/engagement, /_sandbox/webhook-deliveries).

`python -m dispatcher.sandbox [--provider klaviyo|activecampaign]` serves one (__main__.py).
"""

from dispatcher.sandbox.common.faults import Fault
from dispatcher.sandbox.klaviyo import Sandbox, SandboxState, Throttle, start_sandbox

__all__ = ["Fault", "Sandbox", "SandboxState", "Throttle", "start_sandbox"]
