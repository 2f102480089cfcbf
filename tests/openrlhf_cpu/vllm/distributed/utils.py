"""``StatelessProcessGroup``: here a gloo world over a ``TCPStore`` rendezvous."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StatelessProcessGroup:
    host: str
    port: int
    rank: int
    world_size: int

    @classmethod
    def create(cls, host: str, port: int, rank: int, world_size: int) -> StatelessProcessGroup:
        return cls(host, int(port), int(rank), int(world_size))
