"""Sentence-embedding models: distillation, compression and their evaluation."""
