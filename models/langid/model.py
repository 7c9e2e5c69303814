"""langid: which of seven European languages a text is written in (character n-gram naive Bayes
trained on Debian's word lists by training/train_langid.py; see MODEL_CARD.md)."""
from isomodel_worker import Model, ModelError

import langid_nb


class LangId(Model):
    def setup(self, ctx):
        self.table, meta = langid_nb.load(ctx.data_dir)
        self.names = {lang["code"]: lang["name"] for lang in meta["languages"]}

    def predict(self, batch, task):
        if task != "language_identification":
            raise ModelError("INVALID_REQUEST", "langid has no task %s" % task)
        return [langid_nb.identify(self.table, self.names, item["input"]) for item in batch]
