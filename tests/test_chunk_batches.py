"""How a claimed chunk is cut into requests: by text, and smaller for messages tried before."""

from __future__ import annotations

import pytest

from smsqueue.delivery.chunk import batch_size, batches


def test_first_tries_fill_whole_batches_by_text() -> None:
    """Untried messages are grouped by identical text, up to the provider's batch size."""
    texts = {0: "a", 1: "b", 2: "a", 3: "a", 4: "b"}
    got = batches(list(texts), text_of=texts.__getitem__, size=2)
    assert got == [[0, 2], [3], [1, 4]]


def test_a_batch_that_failed_goes_again_in_tenths_then_alone() -> None:
    """A message tried once goes in batches of a tenth, tried twice alone: a poison is isolated."""
    assert [batch_size(100, n) for n in range(4)] == [100, 10, 1, 1]
    tried = {i: (1 if i < 30 else 2 if i < 33 else 0) for i in range(40)}
    got = batches(list(range(40)), text_of=lambda _: "same", size=100, tried=tried)
    assert sorted(len(b) for b in got) == [1, 1, 1, 7, 10, 10, 10]
    for batch in got:  # never mixes messages of different histories
        assert len({tried[i] for i in batch}) == 1


def test_size_below_one_is_refused() -> None:
    """A batch size below one is a ValueError."""
    with pytest.raises(ValueError, match="size"):
        batches([0], text_of=str, size=0)
