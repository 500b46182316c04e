"""A set with O(1) add, remove and uniform random choice (the simulation's entity pools)."""

from __future__ import annotations

import random


class Pool:
    __slots__ = ("items", "_index")

    def __init__(self, items=()) -> None:
        self.items: list[int] = []
        self._index: dict[int, int] = {}
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: int) -> bool:
        return item in self._index

    def add(self, item: int) -> None:
        if item not in self._index:
            self._index[item] = len(self.items)
            self.items.append(item)

    def remove(self, item: int) -> bool:
        pos = self._index.pop(item, None)
        if pos is None:
            return False
        last = self.items.pop()
        if pos < len(self.items):
            self.items[pos] = last
            self._index[last] = pos
        return True

    def choice(self, rng: random.Random) -> int:
        return self.items[int(rng.random() * len(self.items))]
