#!/usr/bin/env python3
"""Derive bert-base-uncased token ids for a few real Scientific items, independently of Rust.

Fixture script only (never run by CI); standard library only. Re-types the BERT reference
tokenizer (google-research/bert `tokenization.py`): BasicTokenizer (lower-case, NFD accent
stripping, split on whitespace and punctuation) then WordpieceTokenizer (greedy longest match
first, `##` continuation, [UNK] if a word cannot be matched); token -> id = line index in
vocab.txt. Keys and values are tokenised separately, as encode_item does.

Usage: derive_bert_ids.py <shared/data dir> <item key>...
"""
import json
import sys
import unicodedata


def is_punct(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def basic(text):
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, cur = [], ""
    for c in text:
        if c.isspace():
            if cur:
                words.append(cur)
            cur = ""
        elif is_punct(c):
            if cur:
                words.append(cur)
            words.append(c)
            cur = ""
        else:
            cur += c
    if cur:
        words.append(cur)
    return words


def wordpiece(word, vocab):
    out, start = [], 0
    while start < len(word):
        end, piece = len(word), None
        while start < end:
            sub = ("##" if start > 0 else "") + word[start:end]
            if sub in vocab:
                piece = sub
                break
            end -= 1
        if piece is None:
            return ["[UNK]"]
        out.append(piece)
        start = end
    return out


def main():
    data_dir = sys.argv[1]
    lines = open(f"{data_dir}/tokenizers/bert-base-uncased/vocab.txt", encoding="utf8").read().split("\n")
    vocab = {tok: i for i, tok in enumerate(lines) if tok}
    meta = json.load(open(f"{data_dir}/scientific-recformer/meta_data.json", encoding="utf8"))
    for key in sys.argv[2:]:
        ids, types = [], []
        for name, value in list(meta[key].items())[:3]:
            k = [p for w in basic(name) for p in wordpiece(w, vocab)]
            v = [p for w in basic(value) for p in wordpiece(w, vocab)]
            print(f"# item {key} {name}: {k + v}")
            ids += ([vocab[t] for t in k + v])[:32]
            types += ([1] * len(k) + [2] * len(v))[:32]
        print(f"item {key} ids   {ids}")
        print(f"item {key} types {types}")


if __name__ == "__main__":
    main()
