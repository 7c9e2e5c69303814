"""Levenshtein distance, for the character and word error rates of training/eval_ocr.py and eval_speech.py."""


def levenshtein(a, b) -> int:
    """Edits (insert, delete, substitute) turning sequence a into b; works on strings and word lists."""
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[-1]
