"""What the bench stage measures of a token classifier on test: entity F1 (the task metric, under `quality` as for
every task) and seqeval's precision, recall and F1 per entity type (`entities`), for every model and artifact."""

from __future__ import annotations

from compress.token_classification.metrics import entity_report


class TokenQuality:
    BOOTSTRAP_ROUNDS = 200  # seqeval scores a resample in milliseconds, not microseconds: fewer rounds than accuracy's

    def __init__(self, run):
        self.run = run
        self.teacher_scored = None  # the teacher's (outputs, labels) on test, for the bootstrap interval

    def _scored(self, predict, tokenizer):
        test = self.run.encode("test", tokenizer)
        return predict(test), test.labels

    def teacher(self, predict, tokenizer) -> dict:
        self.teacher_scored = self._scored(predict, tokenizer)
        report = entity_report(*self.teacher_scored, self.run.data.labels)
        return {"quality": report["f1"], "entities": report}

    def score(self, predict, tokenizer) -> dict:
        from compress.metrics import retained_interval

        outputs, labels = self._scored(predict, tokenizer)
        report = entity_report(outputs, labels, self.run.data.labels)
        out = {"quality": report["f1"], "entities": report}
        if self.teacher_scored is not None:
            interval = retained_interval(self.run.task.metric, (outputs, labels), self.teacher_scored,
                                         rounds=self.BOOTSTRAP_ROUNDS)
            if interval is not None:
                out["retained_interval"] = [round(x, 4) for x in interval]
        return out

    def evaluated_texts(self) -> list[str]:
        return []  # the test split only, which the transfer set leaves out anyway

    def describe(self) -> dict:
        test = self.run.data.test
        return {"metric": "entity-level F1 (seqeval, conlleval rules), micro over types; a word's tag is its first "
                          "piece's", "test_sentences": len(test), "test_words": sum(len(e.words) for e in test)}
