from __future__ import annotations

import math

from bench.kill import Look, dead_permits, whole_again


def test_dead_permits_are_those_left_at_their_expiry() -> None:
    """Permits unrenewed a heartbeat after the kill were the killed worker's."""
    first = {"a:1": 10.0, "b:1": 10.5, "c:1": 11.0}
    later = {"a:1": 10.0, "b:1": 12.9, "d:1": 13.0}  # b renewed, c given back, d new
    assert dead_permits(first, later) == {"a:1": 10.0}


def test_whole_again_waits_for_the_dead_permits_to_go() -> None:
    """The pool is whole at the first look with the cap held and no dead permit in it."""
    dead = {"a:1": 10.0}
    looks = [
        Look(at=1.0, in_flight=9, redis_now=5.0, permits={"a:1": 10.0, **_live(9)}),
        Look(at=2.0, in_flight=9, redis_now=6.0, permits=_live(9)),
        Look(at=3.0, in_flight=9, redis_now=7.0, permits=_live(10)),
    ]
    assert whole_again(looks, dead, 10) == 3.0
    assert math.isnan(whole_again(looks[:2], dead, 10))


def _live(n: int) -> dict[str, float]:
    return {f"live:{k}": 20.0 for k in range(n)}
