"""The pipeline's stages, one module each: finetune -> distill -> export -> quantize -> bench -> bundle.

Each module's `run(run, force)` reads its inputs through the `compress.run.Run` it is given (the recipe, the task,
the earlier stages' records and the OUT layout), writes only the outputs the stage table gives it, and returns
its record; `compress.run` adds the bookkeeping (settings hash, output digests) and writes it. Stages never
import each other or `compress.run`.
"""
