"""bert-compress: take a BERT checkpoint to a small, verified, benchmarked on-device model."""

__version__ = "0.1.0"


def _quiet_optional_imports() -> None:
    """transformers imports torchao when it is installed; its missing-GPU-kernel notices are not ours to show."""
    import logging

    for name in ("torchao", "torchao.kernel.intmm", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


_quiet_optional_imports()
