"""Token classification (named entities, PII, slots): BIO-tagged words, a tag per word piece, entity-level F1."""
