"""Which untrained shape will distil best: the prior `--budget-ms` ranks candidates by.

Training every candidate is what the budget avoids, so the choice rests on rules measured before:
1. **Capacity**: more encoder weights (attention + FFN of every layer) distil to more accuracy. Every pair in
   benchmarks/results/compression_matrix_epyc_zen4.md agrees: 3 × 192 > 3 × 128 (pruned, E = 64, seeds 42 and 43),
   and the default's 3 × 128 student trails 3 × 192 by 1-2 points over seeds.
2. **Factorized embeddings cost accuracy**: E = 64 lost 1.5 points at 3 × 192 (98.01% -> 96.5%, seed 42). It buys
   bytes, not speed, so a factorized shape is taken only when the size budget needs it; its score counts it as an
   unfactorized student of half the capacity.
3. **Depth over width** (Turc et al. 2019, "Well-Read Students Learn Better": for compact distilled BERTs, depth
   should be prioritized over width): the score adds DEPTH_WEIGHT × log(layers), so of two shapes with the same
   weights the deeper scores higher, and a deeper shape may have up to √2× fewer weights per doubling of depth.

4. **Measured points first**: the students of the recipes we ship are measured, the grid's shapes are not, and one
   seed of a student moves by 1-2 points. When shipped recipes fit the budget, a grid shape replaces them only when
   it has at least the layers, width, FFN and table of each (`dominates`) and CAPACITY_STEP × the weights of each:
   the compression matrix gained 1.6 points (mean over seeds) for 2.25× the weights (3 × 128 -> 3 × 192), so a
   smaller step is within the seed spread. Otherwise the shape of the best-scoring fitting recipe is kept (as a
   grid shape of the same size, distilled with the run's recipe). The rule comes from issue 22's budget runs
   (benchmarks/results/budget_issue22_*.json): 4 × 128 students, with FFN 256 and with FFN 512, picked for their
   depth, distilled to 76.5% and 76.1% against the default recipe's 78.3% (3 × 128, E = 64).

score = log(encoder weights) + DEPTH_WEIGHT · log(layers) − FACTORIZED_COST · [E < H]; among the shapes rule 4
allows, the highest score wins, ties to the shape with fewer weights (the faster one).
"""

from __future__ import annotations

import math

from compress.budget.shapes import Shape

FACTORIZED_COST = math.log(2.0)
DEPTH_WEIGHT = 0.5
CAPACITY_STEP = 1.5


def score(shape: Shape) -> float:
    return (math.log(shape.encoder_params) + DEPTH_WEIGHT * math.log(shape.layers)
            - (FACTORIZED_COST if shape.embedding else 0.0))


def dominates(shape: Shape, ref: Shape) -> bool:
    """At least as deep and as wide (hidden, FFN, embedding table: E = H when not factorized) as `ref`."""
    return (shape.layers >= ref.layers and shape.hidden >= ref.hidden and shape.ffn >= ref.ffn
            and (shape.embedding or shape.hidden) >= (ref.embedding or ref.hidden))


def best(shapes: list[Shape], references: list[Shape] = ()) -> Shape:
    """The shape expected to distil most accurately (rules 1-4); `references`: the shipped recipes within budget."""
    if references:
        bigger = [s for s in shapes if all(dominates(s, r) and s.encoder_params >= CAPACITY_STEP * r.encoder_params
                                           for r in references)]
        same = [s for s in shapes if any(dominates(s, r) and dominates(r, s) for r in references)]
        dominating = [s for s in shapes if all(dominates(s, r) for r in references)]
        shapes = bigger or same or dominating or shapes
    return max(shapes, key=lambda s: (round(score(s), 9), -s.encoder_params))
