from isomodel_worker import Model


class Noop(Model):
    def predict(self, batch, task):
        return [{"ok": True} for _ in batch]
