"""What the bench stage measures of a token classifier on test: entity F1 (the task metric, under `accuracy` as for
every task) and seqeval's precision, recall and F1 per entity type (`entities`), for every model and artifact."""

from __future__ import annotations

from compress.tokens.metrics import entity_report


class TokenQuality:
    def __init__(self, run):
        self.run = run

    def score(self, predict, tokenizer) -> dict:
        test = self.run.encode("test", tokenizer)
        report = entity_report(predict(test), test.labels, self.run.data.labels)
        return {"accuracy": report["f1"], "entities": report}

    teacher = score

    def describe(self) -> dict:
        test = self.run.data.test
        return {"metric": "entity-level F1 (seqeval, conlleval rules), micro over types; a word's tag is its first "
                          "piece's", "test_sentences": len(test), "test_words": sum(len(e.words) for e in test)}
