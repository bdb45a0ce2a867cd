"""Random streams keyed by what is drawn (DESIGN.md, Seeding).

A stream is named by what it draws ("retrieve/retrieve_indemnity") and a block of instances. Instances are cut
into fixed blocks of BLOCK_SIZE whatever the chunk size or worker count, so the same instance always sees the
same numbers; variant names are never part of a key, so variants share random numbers (common random numbers).
"""

from __future__ import annotations

import hashlib

import numpy as np

BLOCK_SIZE = 1 << 16
"""Instances per seeding block (fixed: changing it changes every draw)."""


def stream_key(name: str) -> int:
    """A stable 63-bit integer for a stream name (Python's hash() is salted per process, so not that)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little") >> 1


def stream(seed: int, name: str, block: int, attempt: int = 0) -> np.random.Generator:
    """The generator for stream `name` in instance block `block` (attempt > 0: a repeated attempt, for pass^k)."""
    key = (stream_key(name), block) if attempt == 0 else (stream_key(name), block, attempt)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def uniforms(seed: int, name: str, block: int, start: int, stop: int, attempt: int = 0) -> np.ndarray:
    """Uniforms in [0, 1) for instances start..stop-1 of a block (offsets within the block).

    PCG64 doubles come one per 64-bit output, so a slice of a longer draw equals the same slice of any other.
    """
    # float32: twice as many draws per memory pass; a probability is resolved to 2^-24 (6e-8), far below any
    # interval a run can report, and p = 0 / p = 1 stay exact (0 <= u < 1).
    values = stream(seed, name, block, attempt).random(stop, dtype=np.float32)
    return values[start:] if start else values


def block_segments(start: int, stop: int):
    """(first instance, block, offset start, offset stop) pieces of [start, stop) cut at seeding blocks."""
    i = start
    while i < stop:
        block = i // BLOCK_SIZE
        end = min(stop, (block + 1) * BLOCK_SIZE)
        yield i, block, i - block * BLOCK_SIZE, end - block * BLOCK_SIZE
        i = end
