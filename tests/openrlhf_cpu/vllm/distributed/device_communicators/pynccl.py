"""``PyNcclCommunicator``: OpenRLHF's trainer end of the weight sync, over gloo."""

from __future__ import annotations

from typing import Any

from hf_engine import GlooBroadcastGroup


def PyNcclCommunicator(group: Any, device: Any = None) -> GlooBroadcastGroup:
    return GlooBroadcastGroup(group.host, group.port, group.rank, group.world_size)
