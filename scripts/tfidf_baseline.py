#!/usr/bin/env python3
"""Text-similarity reference baseline for a dataset in the official RecFormer layout.

Scores every item by the TF-IDF cosine between its text (title, brand, category; lower-cased
alphanumeric words, log tf, idf = log(N/df)) and the user's last items (weights decay^j for the
j-th newest), then ranks with the official rule (rank = number of items scoring strictly higher
than the label). Test input = train + val history, label = the test item. Standard library only.

    python3 scripts/tfidf_baseline.py ../shared/data/scientific-recformer [--last 1] [--decay 1.0]

It answers one question for docs/results.md: how much of the next-item signal is plain word
overlap with the recent history, i.e. what a text-only recommender can reach without learning
anything about users.
"""
import argparse
import collections
import json
import math
import re


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--last", type=int, default=1, help="history items used (newest first)")
    ap.add_argument("--decay", type=float, default=1.0, help="weight of the j-th newest: decay^j")
    a = ap.parse_args()
    d = a.data_dir.rstrip("/") + "/"
    meta = json.load(open(d + "meta_data.json"))
    smap = json.load(open(d + "smap.json"))
    train, val, test = (json.load(open(d + f)) for f in ("train.json", "val.json", "test.json"))
    n = len(smap)
    rows = {v: k for k, v in smap.items()}
    docs = []
    for row in range(n):
        item = meta[rows[row]] if rows[row] in meta else meta.get(str(row), {})
        text = " ".join(str(item.get(k, "")) for k in ("title", "brand", "category")).lower()
        docs.append(re.findall(r"[a-z0-9]+", text))
    df = collections.Counter(t for doc in docs for t in set(doc))
    vecs = []
    for doc in docs:
        v = {t: (1 + math.log(c)) * math.log(n / df[t]) for t, c in collections.Counter(doc).items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        vecs.append({t: x / norm for t, x in v.items()})
    postings = collections.defaultdict(list)
    for i, v in enumerate(vecs):
        for t, x in v.items():
            postings[t].append((i, x))

    ndcg10 = recall10 = mrr = 0.0
    users = list(test.keys())
    for u in users:
        history = train[u] + val[u]
        label = test[u][0] if isinstance(test[u], list) else test[u]
        query = collections.Counter()
        for j, item in enumerate(reversed(history[-a.last:])):
            for t, x in vecs[item].items():
                query[t] += (a.decay ** j) * x
        scores = [0.0] * n
        for t, x in query.items():
            for i, y in postings[t]:
                scores[i] += x * y
        rank = sum(1 for s in scores if s > scores[label])
        mrr += 1.0 / (rank + 1)
        if rank < 10:
            ndcg10 += 1.0 / math.log2(rank + 2)
            recall10 += 1.0
    k = len(users)
    print(json.dumps({"users": k, "NDCG@10": ndcg10 / k, "Recall@10": recall10 / k, "MRR": mrr / k}))


if __name__ == "__main__":
    main()
