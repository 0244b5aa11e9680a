#!/usr/bin/env python3
"""Derive RoBERTa token ids for a few real Scientific items, independently of the Rust code.

Fixture script only (never run by CI). Uses nothing but the Python standard library:
- the GPT-2 byte-level BPE algorithm as published in openai/gpt-2 `src/encoder.py`
  (bytes_to_unicode, get_pairs, bpe with merge ranks from merges.txt), re-typed here;
- the GPT-2 pre-tokenizer regex, with \\p{L} / \\p{N} spelled out as explicit character classes
  built from unicodedata for the characters of the text (Python's `re` has no \\p{..});
- token -> id by looking the token up in vocab.json with the json module.
The keys ("title", "brand", "category") and values are tokenised without a leading space, as
RecformerTokenizer (add_prefix_space=False) does. Output: the per-item ids and token types that
tests/real_vocab.rs hard-codes.

Usage: derive_roberta_ids.py <shared/data dir> <item key>...
"""
import json
import re
import sys
import unicodedata


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def get_pairs(word):
    return {(a, b) for a, b in zip(word, word[1:])}


def bpe(token, ranks):
    word = tuple(token)
    pairs = get_pairs(word)
    if not pairs:
        return [token]
    while True:
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new_word, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
            except ValueError:
                new_word.extend(word[i:])
                break
            new_word.extend(word[i:j])
            i = j
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new_word.append(first + second)
                i += 2
            else:
                new_word.append(word[i])
                i += 1
        word = tuple(new_word)
        if len(word) == 1:
            break
        pairs = get_pairs(word)
    return list(word)


def pattern_for(text):
    extra_l = "".join(sorted({c for c in text if ord(c) > 127 and unicodedata.category(c).startswith("L")}))
    extra_n = "".join(sorted({c for c in text if ord(c) > 127 and unicodedata.category(c).startswith("N")}))
    letters = "A-Za-z" + re.escape(extra_l)
    numbers = "0-9" + re.escape(extra_n)
    return re.compile(
        r"""'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^\s%s%s]+|\s+(?!\S)|\s+"""
        % (letters, numbers, letters, numbers)
    )


def main():
    data_dir = sys.argv[1]
    vocab = json.load(open(f"{data_dir}/tokenizers/roberta-base/vocab.json", encoding="utf8"))
    merges = open(f"{data_dir}/tokenizers/roberta-base/merges.txt", encoding="utf8").read().split("\n")[1:]
    ranks = {tuple(m.split()): i for i, m in enumerate(merges) if m}
    byte_encoder = bytes_to_unicode()
    meta = json.load(open(f"{data_dir}/scientific-recformer/meta_data.json", encoding="utf8"))

    def tokenize(text):
        out = []
        for piece in pattern_for(text).findall(text):
            chars = "".join(byte_encoder[b] for b in piece.encode("utf-8"))
            out.extend(bpe(chars, ranks))
        return out

    for key in sys.argv[2:]:
        item = meta[key]
        ids, types = [], []
        for name, value in list(item.items())[:3]:
            k, v = tokenize(name), tokenize(value)
            print(f"# item {key} {name}: {k + v}")
            ids += ([vocab[t] for t in k] + [vocab[t] for t in v])[:32]
            types += ([1] * len(k) + [2] * len(v))[:32]
        print(f"item {key} ids   {ids}")
        print(f"item {key} types {types}")


if __name__ == "__main__":
    main()
