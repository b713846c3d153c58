"""Device side of bert-compress: what runs on a phone or a Pi. Never imports torch or transformers."""
