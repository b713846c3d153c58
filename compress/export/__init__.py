"""Exporters (one module per format) and verification of every artifact against the PyTorch student."""
