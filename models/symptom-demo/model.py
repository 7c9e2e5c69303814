"""symptom-demo: a demonstration of the json input type (seed 002's request shape).

It reads {"symptoms": [...], "patient_info": {"age", "gender"}} (the gateway has already checked
it against the schema in model.yaml) and answers with facts about the input only: which symptom
words it recognises from the explicit list in vocabulary.json, their categories, duplicates, the
age band. No diagnosis, no scores, no medical knowledge beyond that list.
"""
import json
import os
import unicodedata

from isomodel_worker import Model, item_error

NOTE = ("A demonstration of isomodel's json input type. It only reports which words of a small, "
        "explicit list it recognises in the input; it is not medicine and gives no diagnosis.")


def normalise(term):
    """NFKC, lower case, inner whitespace collapsed, edges stripped: full-width and ASCII forms match."""
    return " ".join(unicodedata.normalize("NFKC", term).lower().split())


class SymptomDemo(Model):
    def setup(self, ctx):
        with open(os.path.join(ctx.model_dir, "vocabulary.json"), encoding="utf-8") as fh:
            vocab = json.load(fh)
        self.lookup = {}
        for entry in vocab["symptoms"]:
            for lang, terms in entry["terms"].items():
                for term in terms:
                    key = normalise(term)
                    if key in self.lookup:
                        raise ValueError("vocabulary.json lists %r twice" % term)
                    self.lookup[key] = {"symptom": entry["symptom"], "category": entry["category"], "language": lang}
        self.bands = vocab["age_bands"]
        self.vocabulary_size = len(vocab["symptoms"])

    def predict(self, batch, task):
        if task != "summarise":
            return [item_error("INVALID_REQUEST", "symptom-demo has no task %s" % task) for _ in batch]
        return [self.summarise(item["input"]) for item in batch]

    def age_band(self, age):
        for band in self.bands:
            if band["min"] <= age <= band["max"]:
                return band["band"]
        return None

    def summarise(self, data):
        recognised, unrecognised, duplicates = [], [], []
        seen = set()
        for raw in data["symptoms"]:
            key = normalise(raw)
            hit = self.lookup.get(key)
            if hit is None:
                unrecognised.append(raw)
                continue
            if hit["symptom"] in seen:
                duplicates.append(raw)
                continue
            seen.add(hit["symptom"])
            recognised.append({"input": raw, **hit})
        categories = {}
        for r in recognised:
            categories[r["category"]] = categories.get(r["category"], 0) + 1
        info = data.get("patient_info") or {}
        age = info.get("age")
        patient = {"age": age, "age_band": self.age_band(age) if age is not None else None, "gender": info.get("gender")}
        names = ", ".join(r["symptom"] for r in recognised) or "none"
        summary = "%d symptom%s given, %d recognised (%s)" % (len(data["symptoms"]), "" if len(data["symptoms"]) == 1 else "s", len(recognised), names)
        if unrecognised:
            summary += ", %d not in the list" % len(unrecognised)
        if duplicates:
            summary += ", %d repeated" % len(duplicates)
        if age is not None:
            summary += "; age %d (%s)" % (age, patient["age_band"])
        if patient["gender"]:
            summary += "; %s" % patient["gender"]
        return {
            "demonstration": True,
            "note": NOTE,
            "summary": summary,
            "symptom_count": len(data["symptoms"]),
            "recognised": recognised,
            "unrecognised": unrecognised,
            "duplicates": duplicates,
            "categories": dict(sorted(categories.items())),
            "patient": patient,
            "vocabulary_size": self.vocabulary_size,
        }
