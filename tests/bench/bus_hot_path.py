"""The bus's hot path per event, old release against this one: the service's
encoding (API event to the bus message the fast path publishes), the
dispatcher's decoding and translation, and the event-log writer's work before
its SQL. 1,000 realistic events of each type; best of 7 runs, alternating.

    .venv/bin/python -m tests.bench.bus_hot_path OLD_TREE

OLD_TREE is a checkout of the release to compare with (e.g. made by
`git archive <commit> | tar -x -C /tmp/old`); each side runs in a fresh
interpreter with its own tree first on sys.path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROUNDS = 7
PER_TYPE = 1000
ROOT = Path(__file__).resolve().parents[2]
TYPES = ("product_viewed", "added_to_cart", "placed_order", "cart_abandoned", "custom")


def _events(kind: str) -> list[Any]:
    import random

    from google.protobuf import struct_pb2
    from marketing.v1 import event_pb2

    from tests.bench import payloads

    now = datetime.now(UTC)
    out = []
    for n in range(PER_TYPE):
        rng = random.Random(n)
        e = payloads.event(kind, n, now)
        if kind == "product_viewed":
            e.product_viewed.CopyFrom(payloads.product_viewed(rng))
        elif kind == "placed_order":
            e.placed_order.CopyFrom(payloads.placed_order(rng, n))
        else:
            order = payloads.placed_order(rng, n).order
            cart = event_pb2.Cart(
                cart_id=f"cart-{n}",
                items=order.lines,
                total=order.total,
                checkout_url=f"https://shop.example.com/cart/{n}",
            )
            cart.last_activity_time.FromDatetime(now)
            if kind == "added_to_cart":
                e.added_to_cart.CopyFrom(event_pb2.AddedToCart(item=order.lines[0], cart=cart))
            elif kind == "cart_abandoned":
                e.cart_abandoned.CopyFrom(event_pb2.CartAbandoned(cart=cart))
            else:
                properties = struct_pb2.Struct()
                properties.update(
                    {"stars": rng.randint(1, 5), "text": "Lovely mug " * 5, "tags": ["a", "b"]}
                )
                e.custom.CopyFrom(
                    event_pb2.CustomEvent(
                        name="review_submitted", properties=properties, value=order.total
                    )
                )
        out.append(e)
    return out


def measure() -> dict[str, dict[str, float]]:
    """µs per event of each step for each type, in this interpreter's code."""
    from marketing_runtime.envelope import parse_delivery, serialized_events
    from marketing_runtime.timestamps import to_timestamp

    from dispatcher.delivery import translate
    from service.errors import Violations
    from service.events import rules
    from service.events.handlers import event_input
    from service.workers import event_log_writer

    now = datetime.now(UTC) + timedelta(seconds=1)
    created = to_timestamp(now)
    result: dict[str, dict[str, float]] = {}
    for kind in TYPES:
        api = _events(kind)

        def encode(api: list[Any] = api) -> list[bytes]:
            v = Violations()
            records = []
            for e in api:
                given = event_input(e)
                encoded = rules.validate_event(v, given, "event.", now, timedelta(days=1))
                records.append(rules._record(given.event_id, given, encoded, now))
            v.raise_if_any()
            return list(serialized_events((r.bus_event() for r in records), created))

        data = encode()

        def dispatch(data: list[bytes] = data) -> None:
            for d in data:
                translate.tracked_event(parse_delivery(d))

        def log(data: list[bytes] = data) -> None:
            events = [event_log_writer._log_event(parse_delivery(d)) for d in data]
            # The document each row's jsonb is bound from, as insert_log_rows does.
            [_log_json(e).decode() for e in events]

        steps = (("service encode", encode), ("dispatcher", dispatch), ("log writer", log))
        result[kind] = {
            step: min(timeit.repeat(fn, number=1, repeat=3)) / PER_TYPE * 1e6 for step, fn in steps
        }
    return result


def _log_json(e: Any) -> bytes:
    json_doc = getattr(e, "payload_json", None)  # this release
    return bytes(json_doc if json_doc is not None else e.event.properties_json)


def _run(tree: Path) -> dict[str, dict[str, float]]:
    paths = [tree, tree / "clients" / "runtime", tree / "clients" / "python"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in paths))
    out = subprocess.run(
        [sys.executable, "-c", "from tests.bench.bus_hot_path import _side; _side()"],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, dict[str, float]] = json.loads(out)
    return result


def _side() -> None:
    import marketing_runtime

    import service

    for module in (service, marketing_runtime):
        assert Path(str(module.__file__)).resolve().is_relative_to(Path.cwd().resolve()), module
    print(json.dumps(measure()))


def main() -> None:
    old_tree, new_tree = Path(sys.argv[1]).resolve(), ROOT
    best: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(ROUNDS):
        for side, tree in (("old", old_tree), ("new", new_tree)):
            run = _run(tree)
            for kind, steps in run.items():
                for step, us in steps.items():
                    slot = best.setdefault(side, {}).setdefault(kind, {})
                    slot[step] = min(us, slot.get(step, us))
    print(f"{'type':16} {'step':16} {'old µs':>8} {'new µs':>8} {'change':>8}")
    for kind in TYPES:
        for step, old in best["old"][kind].items():
            new = best["new"][kind][step]
            print(f"{kind:16} {step:16} {old:8.2f} {new:8.2f} {new / old - 1:+8.0%}")


if __name__ == "__main__":
    main()
