"""Functions of examples/map_reduce.yaml: every map iteration returns a score, the next step reads them all."""

from __future__ import annotations

from typing import List


def score_chunk(chunk: int) -> dict:
    """Runs once per chunk; with ``reducer: collect`` its ``score`` is gathered into a list."""
    return {"score": chunk * 10}


def summarise(chunks: List[int], score: List[int]) -> dict:
    """``score`` holds every chunk's score, in the order of ``chunks``, however the iterations ended."""
    print(f"scores by chunk: {dict(zip(chunks, score, strict=True))}")
    return {"best_chunk": chunks[score.index(max(score))]}
