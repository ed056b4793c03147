"""Counting the permits held now, by the clock that scored them: Redis's own.

PERMIT_ACQUIRE and PERMIT_RENEW score each permit with its lease expiry read from
Redis's ``TIME``. Counting with the host's clock instead would be off by however far
the two disagree (a host a minute behind counts a minute of expired leases as held).
The limiter and the metrics exporter both count through ``HELD``.
"""

from __future__ import annotations

from typing import Final

# The permits whose lease ends after now, by Redis's clock (PERMIT_ACQUIRE drops those
# scored at now or before, so ours are the ones strictly after it).
# KEYS: permits zset. Returns the count.
HELD: Final = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.6f', now), '+inf')
"""
