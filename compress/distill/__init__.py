"""Distillation: the student learns from the teacher through named, weighted loss terms."""
