"""Sentences of a text with one regex: deterministic, no model, no locale (the embedding evaluation's inverse-cloze
set and the transfer text's segments use it)."""

from __future__ import annotations

import re

# A sentence ends at . ! or ?, optionally followed by a closing quote/bracket, then whitespace, then a
# capital letter, digit or opening quote. Two fixed-width lookbehinds because Python's re allows no
# variable-width one. Known limits (accepted: this only picks ICT queries): "U.S. Army" or initials split;
# the few titles below are re-joined.
_BOUNDARY = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_TITLES = ("Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Jr.", "Sr.", "Prof.", "Lt.", "Sgt.", "Capt.", "Col.", "Gen.", "vs.")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with one regex (see _BOUNDARY)."""
    parts = [p.strip() for p in _BOUNDARY.split(text.strip()) if p.strip()]
    out: list[str] = []
    for p in parts:
        # "Dr. Smith" would otherwise end a sentence at "Dr."
        if out and out[-1].rsplit(None, 1)[-1] in _TITLES:
            out[-1] = f"{out[-1]} {p}"
        else:
            out.append(p)
    return out
