"""Later status changes of transactions (pending -> outcome, approved -> reversed), due in time order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class StatusChanges:
    """A heap of (due, seq, transaction id, new status, decline reason); seq keeps ties in push order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, str, str | None]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, due: float, txn_id: int, status: str, reason: str | None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, txn_id, status, reason))

    def pop_due(self, until: float) -> Iterator[tuple[int, str, str | None, float]]:
        """Yields (transaction id, status, reason, due) of every change due by `until`, earliest first."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            due, _, txn_id, status, reason = heapq.heappop(heap)
            yield txn_id, status, reason, due
