#!/usr/bin/env python3
"""Generate the pretrained-source fixtures of `recformer-model` (never needed by CI).

Run from anywhere:

    python3 crates/recformer-model/scripts/gen_pretrained_fixtures.py

The script bootstraps its own virtual environment (default `<repo>/.venv`, git-ignored; override with
`RECFORMER_VENV`), installs PyTorch, `transformers==4.28.0` (the version pinned by the official RecFormer
code, with `--no-deps` plus its small pure-Python dependencies), `tokenizers==0.13.3` and
`huggingface-hub==0.16.4` into it and re-executes itself there.

These fixtures check the conversion of ordinary Hugging Face checkpoints (BERT, RoBERTa, Longformer) into
a RecFormer model, and the tokenisation + encoding of real items by a real pretrained model.

A. Tiny, seeded HF source models, each a genuine HF model directory (`config.json` written by the HF
   config class, so it carries `model_type`; weights; tokenizer files) plus `expected.safetensors`, in
   `crates/recformer-model/tests/fixtures/pretrained/<name>/`:

   - `bert/`        `BertForMaskedLM`; `vocab.txt` (WordPiece); `pytorch_model.bin` (torch.save of the
                    state dict, keys `bert.*` + `cls.predictions.*`) WITHOUT the tied
                    `cls.predictions.decoder.weight`, as many real BERT files omit it.
   - `roberta/`     `RobertaModel` with its pooler; `model.safetensors` (keys without prefix:
                    `embeddings.*`, `encoder.*`, and `pooler.*`, which a converter must drop);
                    `vocab.json` + `merges.txt` (a tiny byte-level BPE).
   - `longformer/`  `LongformerForMaskedLM` (attention window 16); `pytorch_model.bin` with all keys
                    (`longformer.*` incl. the layers' own `query_global`/`key_global`/`value_global`,
                    and `lm_head.*` incl. the tied `lm_head.decoder.weight`); the same BPE files.

   HF initialises biases to 0 and LayerNorms to 1/0, so a converter that dropped them would still pass;
   therefore every parameter is perturbed by `0.1 * randn` (tied parameters once, so ties survive) and
   every tensor influences the outputs. The models run in eval mode (no dropout), float32, no_grad.

   `expected.safetensors` holds
   - `input_ids`          int64 [2, 7]: first token (`[CLS]`=2 / `<s>`=0), then 6 random non-special ids;
                          no padding (attention mask all ones, token types all zero, HF default positions;
                          Longformer: global attention on token 0 only).
   - `last_hidden_state`  f32 [2, 7, 32], the encoder's output.
   - `mlm_logits`         f32 [2, 7, V] (bert and longformer only).

B. The real pretrained `sentence-transformers/all-MiniLM-L6-v2` (a `BertModel`, read from
   `<data>/minilm-l6-v2`, where `<data>` is `$RECFORMER_DATA_DIR` or the `shared/data` next to / inside
   the repository) on four real items of `<data>/scientific-recformer/meta_data.json` (keys "0", "1", "2"
   and the item with the longest title among the first 200). Each item is tokenised like the official
   RecFormer `encode_item` (max_attr_num=3, max_attr_length=32: `[CLS]`, then per attribute
   `(name_ids + value_ids)[:32]` with token types 1 for the name and 2 for the value; the shipped
   `tokenizer.json` pads and truncates to 128, both switched off) and encoded alone with token types all
   zero (RecFormer's conversion maps every token type to BERT's type-0 row). Written to
   `tests/fixtures/minilm_scientific.json` (repository root): the ids, the RecFormer token types, the CLS
   vector and the token mean of `last_hidden_state`, floats rounded to 7 significant digits.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve()
CRATE = SCRIPT.parent.parent
REPO = CRATE.parent.parent
PRETRAINED = CRATE / "tests" / "fixtures" / "pretrained"
MINILM_JSON = REPO / "tests" / "fixtures" / "minilm_scientific.json"
VENV = Path(os.environ.get("RECFORMER_VENV", REPO / ".venv"))
TRANSFORMERS_VERSION = "4.28.0"
TOKENIZERS_VERSION = "0.13.3"
HUB_VERSION = "0.16.4"
SEED = 20230524


# --------------------------------------------------------------------------------------------
# Environment bootstrap
# --------------------------------------------------------------------------------------------
def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _pip(*args: str) -> None:
    subprocess.check_call([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", *args])


def _imports_ok(code: str) -> bool:
    return subprocess.call([str(VENV / "bin" / "python"), "-c", code]) == 0


def bootstrap() -> None:
    if not (VENV / "bin" / "python").exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    if not _imports_ok("import torch"):
        _pip("torch")
    if not _imports_ok(
        f"import transformers, tokenizers; assert transformers.__version__ == '{TRANSFORMERS_VERSION}'; "
        f"assert tokenizers.__version__ == '{TOKENIZERS_VERSION}'"
    ):
        _pip("--no-deps", f"transformers=={TRANSFORMERS_VERSION}")
        _pip(f"tokenizers=={TOKENIZERS_VERSION}", f"huggingface-hub=={HUB_VERSION}", "regex", "pyyaml",
             "packaging", "requests", "tqdm", "numpy<2", "safetensors")
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), str(SCRIPT), *sys.argv[1:]])


if not _in_venv():
    bootstrap()

# --------------------------------------------------------------------------------------------
# Inside the venv
# --------------------------------------------------------------------------------------------
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForMaskedLM,
    BertModel,
    AutoTokenizer,
    LongformerConfig,
    LongformerForMaskedLM,
    RobertaConfig,
    RobertaModel,
)

HIDDEN = 32
SEQ_LEN = 7
BATCH = 2

# WordPiece vocabulary of the tiny BERT: id = line index.
BERT_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "title", "brand", "category",
    "the", "a", "of", "and", "for", "with", "steel", "kit", "start", "relay", "hard", "staple",
    "crown", "narrow", "glove", "lab", "tube", "test", "glass", "metal", "red", "blue",
    "in", "inch", "count", "pack",
    "##s", "##ed", "##ing", "##er", "##ly", "##al", "##ic", "##es", "##le", "##or",
]

# Byte-level BPE of the tiny RoBERTa / Longformer: specials, the 26 lower-case letters, "Ġ" (the byte-level
# space), then the merges below (rank = line order), each result appended to the vocabulary.
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BPE_MERGES = [
    ("t", "i"), ("ti", "t"), ("l", "e"), ("tit", "le"), ("Ġ", "title"),  # title, Ġtitle
    ("Ġ", "b"), ("r", "a"), ("Ġb", "ra"), ("n", "d"), ("Ġbra", "nd"),     # Ġbrand
    ("Ġ", "c"), ("a", "t"), ("Ġc", "at"), ("e", "g"), ("o", "r"),
    ("eg", "or"), ("Ġcat", "egor"), ("Ġcategor", "y"),                    # Ġcategory
    ("Ġ", "s"), ("Ġs", "t"), ("e", "e"), ("Ġst", "ee"), ("Ġstee", "l"),   # Ġsteel
    ("i", "t"), ("Ġ", "k"), ("Ġk", "it"),                                 # Ġkit
    ("i", "n"), ("Ġ", "in"),                                              # in, Ġin
]


def bpe_vocab() -> dict:
    tokens = BPE_SPECIALS + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["Ġ"]
    for a, b in BPE_MERGES:
        assert a in tokens and b in tokens, (a, b)
        if a + b not in tokens:
            tokens.append(a + b)
    return {t: i for i, t in enumerate(tokens)}


def perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Add 0.1 * randn to every parameter, in place. `parameters()` yields tied parameters once, so the
    ties (decoder weight = word embeddings, decoder bias = head bias) survive."""
    with torch.no_grad():
        for p in model.parameters():
            p.data.add_(0.1 * torch.randn(p.shape, generator=generator))


def make_input_ids(first_id: int, vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    rest = torch.randint(5, vocab_size, (BATCH, SEQ_LEN - 1), generator=generator)
    ids = torch.cat([torch.full((BATCH, 1), first_id, dtype=torch.long), rest], dim=1)
    assert not torch.equal(ids[0], ids[1])
    return ids.contiguous()


def write_config(config, out: Path) -> None:
    config.to_json_file(str(out / "config.json"))
    written = json.loads((out / "config.json").read_text())
    assert written["model_type"] == config.model_type and written["vocab_size"] == config.vocab_size


def write_bpe(out: Path, tokenizer_class: str) -> None:
    vocab = bpe_vocab()
    assert len(vocab) <= 64, len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in BPE_MERGES),
                                    encoding="utf-8")
    bpe = tokenizers.ByteLevelBPETokenizer(str(out / "vocab.json"), str(out / "merges.txt"))
    assert bpe.encode("title brand category").tokens == ["title", "Ġbrand", "Ġcategory"]
    assert bpe.encode(" steel kit in title").tokens == ["Ġsteel", "Ġkit", "Ġin", "Ġtitle"]
    fast = AutoTokenizer.from_pretrained(str(out))  # via config.json's model_type
    assert type(fast).__name__ == tokenizer_class, type(fast).__name__
    assert fast("title").input_ids == [vocab["<s>"], vocab["title"], vocab["</s>"]]


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# --------------------------------------------------------------------------------------------
# A. Tiny HF source models
# --------------------------------------------------------------------------------------------
def gen_bert(generator: torch.Generator) -> None:
    out = PRETRAINED / "bert"
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("".join(t + "\n" for t in BERT_VOCAB), encoding="utf-8")
    vocab_size = len(BERT_VOCAB)
    config = BertConfig(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, hidden_act="gelu", max_position_embeddings=40, type_vocab_size=2,
                        pad_token_id=0, layer_norm_eps=1e-12)
    model = BertForMaskedLM(config)
    perturb(model, generator)
    model.eval()
    head = model.cls.predictions
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.equal(head.decoder.bias, head.bias)
    write_config(config, out)
    tok = AutoTokenizer.from_pretrained(str(out))  # via config.json's model_type
    assert type(tok).__name__ == "BertTokenizerFast", type(tok).__name__
    assert tok("title brand").input_ids == [2, 5, 6, 3], tok("title brand").input_ids
    assert tok.cls_token_id == 2 and tok.pad_token_id == 0

    state = {k: v for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"}
    torch.save(state, out / "pytorch_model.bin")

    input_ids = make_input_ids(2, vocab_size, generator)
    inputs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                  token_type_ids=torch.zeros_like(input_ids))
    with torch.no_grad():
        hidden = model.bert(**inputs).last_hidden_state
        logits = model(**inputs).logits
    save_file({"input_ids": input_ids, "last_hidden_state": hidden.float().contiguous(),
               "mlm_logits": logits.float().contiguous()}, str(out / "expected.safetensors"))

    # Checks: the file lacks the tied decoder weight, and reloading it reproduces the outputs.
    loaded = torch.load(out / "pytorch_model.bin")
    assert "cls.predictions.decoder.weight" not in loaded
    assert "bert.embeddings.word_embeddings.weight" in loaded
    fresh = BertForMaskedLM(config).eval()
    missing, unexpected = fresh.load_state_dict(loaded, strict=False)
    assert missing == ["cls.predictions.decoder.weight"] and not unexpected, (missing, unexpected)
    reloaded, info = BertForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert not info["unexpected_keys"] and not info["mismatched_keys"], info
    for m in (fresh, reloaded.eval()):
        assert m.cls.predictions.decoder.weight is m.bert.embeddings.word_embeddings.weight
        with torch.no_grad():
            assert max_abs_diff(m.bert(**inputs).last_hidden_state, hidden) == 0.0
            assert max_abs_diff(m(**inputs).logits, logits) == 0.0
    print(f"bert: V={vocab_size}, input_ids={input_ids.tolist()}")


def gen_roberta(generator: torch.Generator) -> None:
    out = PRETRAINED / "roberta"
    out.mkdir(parents=True, exist_ok=True)
    config = RobertaConfig(vocab_size=64, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=42, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    model = RobertaModel(config, add_pooling_layer=True)
    perturb(model, generator)
    model.eval()
    write_config(config, out)
    write_bpe(out, "RobertaTokenizerFast")

    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "embeddings.token_type_ids"}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})

    input_ids = make_input_ids(0, config.vocab_size, generator)
    inputs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                  token_type_ids=torch.zeros_like(input_ids))
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    save_file({"input_ids": input_ids, "last_hidden_state": hidden.float().contiguous()},
              str(out / "expected.safetensors"))

    loaded = load_file(str(out / "model.safetensors"))
    assert "pooler.dense.weight" in loaded and "pooler.dense.bias" in loaded
    assert not any(k.startswith("roberta.") for k in loaded)
    fresh = RobertaModel(config, add_pooling_layer=True).eval()
    missing, unexpected = fresh.load_state_dict(loaded, strict=False)
    assert not unexpected and all("token_type_ids" in k for k in missing), (missing, unexpected)
    reloaded, info = RobertaModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["unexpected_keys"] and not info["mismatched_keys"], info
    for m in (fresh, reloaded.eval()):
        with torch.no_grad():
            assert max_abs_diff(m(**inputs).last_hidden_state, hidden) == 0.0
    print(f"roberta: V={config.vocab_size}, input_ids={input_ids.tolist()}")


def gen_longformer(generator: torch.Generator) -> None:
    out = PRETRAINED / "longformer"
    out.mkdir(parents=True, exist_ok=True)
    config = LongformerConfig(vocab_size=64, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=42, type_vocab_size=1,
                              pad_token_id=1, bos_token_id=0, eos_token_id=2, sep_token_id=2, layer_norm_eps=1e-5,
                              attention_window=[16, 16])
    model = LongformerForMaskedLM(config)
    perturb(model, generator)
    model.eval()
    assert model.lm_head.decoder.weight is model.longformer.embeddings.word_embeddings.weight
    assert torch.equal(model.lm_head.decoder.bias, model.lm_head.bias)
    write_config(config, out)
    write_bpe(out, "LongformerTokenizerFast")

    torch.save(model.state_dict(), out / "pytorch_model.bin")

    input_ids = make_input_ids(0, config.vocab_size, generator)
    global_attention_mask = torch.zeros_like(input_ids)
    global_attention_mask[:, 0] = 1
    inputs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                  global_attention_mask=global_attention_mask, token_type_ids=torch.zeros_like(input_ids))
    with torch.no_grad():
        hidden = model.longformer(**inputs).last_hidden_state
        logits = model(**inputs).logits
    assert hidden.shape == (BATCH, SEQ_LEN, HIDDEN)
    save_file({"input_ids": input_ids, "last_hidden_state": hidden.float().contiguous(),
               "mlm_logits": logits.float().contiguous()}, str(out / "expected.safetensors"))

    loaded = torch.load(out / "pytorch_model.bin")
    assert "lm_head.decoder.weight" in loaded and "lm_head.bias" in loaded
    for layer in range(config.num_hidden_layers):
        p = f"longformer.encoder.layer.{layer}.attention.self."
        for proj in ("query", "key", "value"):
            assert not torch.equal(loaded[p + proj + "_global.weight"], loaded[p + proj + ".weight"])
            assert not torch.equal(loaded[p + proj + "_global.bias"], loaded[p + proj + ".bias"])
    fresh = LongformerForMaskedLM(config).eval()
    fresh.load_state_dict(loaded, strict=True)
    reloaded, info = LongformerForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"] and not info["mismatched_keys"], info
    for m in (fresh, reloaded.eval()):
        with torch.no_grad():
            assert max_abs_diff(m.longformer(**inputs).last_hidden_state, hidden) == 0.0
            assert max_abs_diff(m(**inputs).logits, logits) == 0.0
    print(f"longformer: V={config.vocab_size}, input_ids={input_ids.tolist()}")


# --------------------------------------------------------------------------------------------
# B. Real pretrained MiniLM on real items
# --------------------------------------------------------------------------------------------
MAX_ATTR_NUM = 3
MAX_ATTR_LENGTH = 32


def data_dir() -> Path:
    if os.environ.get("RECFORMER_DATA_DIR"):
        return Path(os.environ["RECFORMER_DATA_DIR"])
    for candidate in (REPO / "shared" / "data", REPO.parent / "shared" / "data"):
        if (candidate / "minilm-l6-v2").is_dir():
            return candidate
    sys.exit("shared/data with minilm-l6-v2 not found; set RECFORMER_DATA_DIR")


def encode_item(tok: tokenizers.Tokenizer, cls_id: int, item: dict):
    """Official RecFormer `encode_item` for a single item, preceded by [CLS] (type 0)."""
    ids, types = [cls_id], [0]
    for name, value in list(item.items())[:MAX_ATTR_NUM]:
        n = tok.encode(name, add_special_tokens=False).ids
        v = tok.encode(value, add_special_tokens=False).ids
        ids += (n + v)[:MAX_ATTR_LENGTH]
        types += ([1] * len(n) + [2] * len(v))[:MAX_ATTR_LENGTH]
    return ids, types


def round7(values) -> list:
    return [float(f"{x:.7g}") for x in values]


def gen_minilm() -> None:
    data = data_dir()
    minilm = data / "minilm-l6-v2"
    with open(data / "scientific-recformer" / "meta_data.json", encoding="utf-8") as f:
        meta = json.load(f)
    first = list(meta.items())[:200]
    longest = max(first, key=lambda kv: len(kv[1]["title"]))[0]  # first one on ties
    keys = ["0", "1", "2"] + ([longest] if longest not in ("0", "1", "2") else [])

    tok = tokenizers.Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    cls_id = tok.token_to_id("[CLS]")
    assert cls_id == 101

    model, info = BertModel.from_pretrained(str(minilm), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    model = model.float().eval()

    items = []
    for key in keys:
        ids, types = encode_item(tok, cls_id, meta[key])
        input_ids = torch.tensor([ids], dtype=torch.long)
        with torch.no_grad():
            hidden = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state[0]
        items.append({"item": key, "input_ids": ids, "token_type_ids": types,
                      "cls": round7(hidden[0].tolist()), "mean": round7(hidden.mean(dim=0).tolist())})
        print(f"minilm: item {key!r}: {len(ids)} tokens (title {len(meta[key]['title'])} chars)")

    record = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (shared/data/minilm-l6-v2)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "max_attr_num": MAX_ATTR_NUM,
        "max_attr_length": MAX_ATTR_LENGTH,
        "items": items,
    }
    MINILM_JSON.parent.mkdir(parents=True, exist_ok=True)
    with open(MINILM_JSON, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.write("\n")


def main() -> None:
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    gen_bert(generator)
    gen_roberta(generator)
    gen_longformer(generator)
    gen_minilm()
    total = sum(p.stat().st_size for p in PRETRAINED.rglob("*") if p.is_file()) + MINILM_JSON.stat().st_size
    print(f"wrote {PRETRAINED} and {MINILM_JSON}, {total / 1024:.0f} KiB in all")


if __name__ == "__main__":
    main()
