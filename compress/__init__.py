"""bert-compress: take a BERT checkpoint to a small, verified, benchmarked on-device model."""

__version__ = "0.1.0"
