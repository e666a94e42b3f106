"""Data parallelism through accelerate: which process am I, how samples are sharded, and how
the main process gathers what the others measured.

Launched by `accelerate launch` (or torchrun), WORLD_SIZE > 1 and each process takes every
WORLD_SIZE-th request; alone, this is a no-op. On CPU the processes talk over gloo
(`PartialState(cpu=True)`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> list:
        return items[self.rank::self.world]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def broadcast(self, obj):
        """rank 0's value of `obj`, on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as td

        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank (small objects only)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as td

        out = [None] * self.world
        td.all_gather_object(out, obj)
        return out


def launched_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def context(device_type: str) -> Dist:
    world = launched_world()
    if world == 1:
        return Dist()
    from accelerate import PartialState

    state = PartialState(cpu=device_type == "cpu")
    return Dist(state.process_index, state.num_processes, state.local_process_index)
