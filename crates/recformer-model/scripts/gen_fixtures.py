#!/usr/bin/env python3
"""Generate the PyTorch parity fixtures of `recformer-model` (never needed by CI).

Run from anywhere:

    python3 crates/recformer-model/scripts/gen_fixtures.py

The script bootstraps its own virtual environment (default `<repo>/.venv`, git-ignored; override with
`RECFORMER_VENV`), installs PyTorch and `transformers==4.28.0` (the version pinned by the official
RecFormer code) into it and re-executes itself there. `transformers` is installed with `--no-deps`
plus its small pure-Python dependencies; `tokenizers` is not needed for the model.

It then builds a tiny, seeded RecFormer exactly like the official `recformer/models.py`:
`RecformerEmbeddings` (word + position + token type + item position, LayerNorm, dropout) + the
unchanged HF `LongformerEncoder` + the parameter-free CLS pooler, and the HF `LongformerLMHead`
for `RecformerForPretraining`. The forward pass follows `RecformerModel.forward`
(merge masks -> pad to the window multiple -> extended mask -> embeddings -> encoder -> unpad).

Outputs (in `crates/recformer-model/tests/fixtures/`, a few hundred KB in all):
- `config.json`                      the HF-style config of the tiny model
- `pretraining.bin`                  torch.save(RecformerForPretraining.state_dict())  (`longformer.*` + `lm_head.*`)
- `pretraining.safetensors`          the same tensors as safetensors
- `model.bin`                        torch.save(RecformerModel.state_dict())           (`embeddings.*` + `encoder.*`)
- `seqrec.bin`                       `longformer.*` + `item_embedding.weight`          (RecformerForSeqRec style)
- `seqrec_item_embedding.safetensors` the expected `item_embedding.weight` of `seqrec.bin`
- `case_<name>.safetensors`          inputs (int64) and expected outputs (f32) for each input case
- `versions.json`                    python/torch/transformers versions, seed, cases
"""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve()
CRATE = SCRIPT.parent.parent
REPO = CRATE.parent.parent
FIXTURES = CRATE / "tests" / "fixtures"
VENV = Path(os.environ.get("RECFORMER_VENV", REPO / ".venv"))
TRANSFORMERS_VERSION = "4.28.0"
SEED = 20230523


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
        # First try the bare wheel (no multi-GB CUDA wheels); fall back to a full install.
        _pip("--no-deps", "torch")
        _pip("typing_extensions", "sympy", "networkx", "jinja2", "fsspec", "filelock")
        if not _imports_ok("import torch"):
            print("torch --no-deps does not import; installing torch with its dependencies", file=sys.stderr)
            _pip("torch")
    if not _imports_ok(f"import transformers; assert transformers.__version__ == '{TRANSFORMERS_VERSION}'"):
        _pip("--no-deps", f"transformers=={TRANSFORMERS_VERSION}")
        _pip("huggingface-hub==0.14.1", "regex", "pyyaml", "packaging", "requests", "tqdm", "numpy<2", "safetensors")
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), str(SCRIPT), *sys.argv[1:]])


if not _in_venv():
    bootstrap()

# --------------------------------------------------------------------------------------------
# Inside the venv
# --------------------------------------------------------------------------------------------
import platform  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402
from transformers.models.longformer.modeling_longformer import (  # noqa: E402
    LongformerConfig,
    LongformerEncoder,
    LongformerLMHead,
    LongformerPreTrainedModel,
)

# Tiny config (HF config.json field names; RecFormer extras as in recformer/models.py::RecformerConfig).
CONFIG = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 32,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "sep_token_id": 2,
    "attention_window": [4, 4],
    "token_type_size": 4,
    "max_token_num": 24,
    "max_item_embeddings": 6,
    "max_attr_num": 3,
    "max_attr_length": 8,
    "pooler_type": "cls",
    "temp": 0.05,
    "mlm_weight": 0.1,
}
ITEM_NUM = 5  # rows of item_embedding.weight in the SeqRec-style checkpoint


class RecformerConfig(LongformerConfig):
    """recformer/models.py::RecformerConfig (only the fields the model reads)."""

    def __init__(self, token_type_size=4, max_token_num=2048, max_item_embeddings=32, max_attr_num=12,
                 max_attr_length=8, pooler_type="cls", temp=0.05, mlm_weight=0.1, item_num=0,
                 finetune_negative_sample_size=0, **kwargs):
        super().__init__(**kwargs)
        self.token_type_size = token_type_size
        self.max_token_num = max_token_num
        self.max_item_embeddings = max_item_embeddings
        self.max_attr_num = max_attr_num
        self.max_attr_length = max_attr_length
        self.pooler_type = pooler_type
        self.temp = temp
        self.mlm_weight = mlm_weight
        self.item_num = item_num
        self.finetune_negative_sample_size = finetune_negative_sample_size


def create_position_ids_from_input_ids(input_ids, padding_idx):
    # transformers.models.longformer.modeling_longformer.create_position_ids_from_input_ids
    mask = input_ids.ne(padding_idx).int()
    incremental_indices = torch.cumsum(mask, dim=1).type_as(mask) * mask
    return incremental_indices.long() + padding_idx


class RecformerEmbeddings(nn.Module):
    """recformer/models.py::RecformerEmbeddings."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.token_type_size, config.hidden_size)
        self.item_position_embeddings = nn.Embedding(config.max_item_embeddings, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)))
        self.padding_idx = config.pad_token_id
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx
        )

    def forward(self, input_ids, token_type_ids, item_position_ids):
        position_ids = create_position_ids_from_input_ids(input_ids, self.padding_idx).to(input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros(input_ids.size(), dtype=torch.long, device=input_ids.device)
        inputs_embeds = self.word_embeddings(input_ids)
        position_embeddings = self.position_embeddings(position_ids)
        token_type_embeddings = self.token_type_embeddings(token_type_ids)
        item_position_embeddings = self.item_position_embeddings(item_position_ids)
        embeddings = inputs_embeds + position_embeddings + token_type_embeddings + item_position_embeddings
        embeddings = self.LayerNorm(embeddings)
        embeddings = self.dropout(embeddings)
        return embeddings


class RecformerPooler(nn.Module):
    """recformer/models.py::RecformerPooler ('cls': last-layer first token, no weights)."""

    def __init__(self, config):
        super().__init__()
        self.pooler_type = config.pooler_type

    def forward(self, attention_mask, hidden_states):
        assert self.pooler_type == "cls"
        return hidden_states[:, 0]


class RecformerModel(LongformerPreTrainedModel):
    """recformer/models.py::RecformerModel (forward copied from its structure)."""

    def __init__(self, config):
        super().__init__(config)
        self.config = config
        if isinstance(config.attention_window, int):
            assert config.attention_window % 2 == 0
            assert config.attention_window > 0
        else:
            assert len(config.attention_window) == config.num_hidden_layers
        self.embeddings = RecformerEmbeddings(config)
        self.encoder = LongformerEncoder(config)
        self.pooler = RecformerPooler(config)
        self.post_init()

    def _pad_to_window_size(self, input_ids, attention_mask, token_type_ids, item_position_ids, pad_token_id):
        attention_window = (
            self.config.attention_window
            if isinstance(self.config.attention_window, int)
            else max(self.config.attention_window)
        )
        assert attention_window % 2 == 0
        batch_size, seq_len = input_ids.shape[:2]
        padding_len = (attention_window - seq_len % attention_window) % attention_window
        if padding_len > 0:
            input_ids = nn.functional.pad(input_ids, (0, padding_len), value=pad_token_id)
            item_position_ids = nn.functional.pad(item_position_ids, (0, padding_len), value=pad_token_id)
            attention_mask = nn.functional.pad(attention_mask, (0, padding_len), value=0)
            token_type_ids = nn.functional.pad(token_type_ids, (0, padding_len), value=0)
        return padding_len, input_ids, attention_mask, token_type_ids, item_position_ids

    def _merge_to_attention_mask(self, attention_mask, global_attention_mask):
        if attention_mask is not None:
            return attention_mask * (global_attention_mask + 1)
        return global_attention_mask + 1

    def forward(self, input_ids, attention_mask, global_attention_mask, token_type_ids, item_position_ids):
        input_shape = input_ids.size()
        attention_mask = self._merge_to_attention_mask(attention_mask, global_attention_mask)
        padding_len, input_ids, attention_mask, token_type_ids, item_position_ids = self._pad_to_window_size(
            input_ids, attention_mask, token_type_ids, item_position_ids, self.config.pad_token_id
        )
        extended_attention_mask = self.get_extended_attention_mask(attention_mask, input_shape)[:, 0, 0, :]
        embedding_output = self.embeddings(input_ids, token_type_ids, item_position_ids)
        encoder_outputs = self.encoder(
            embedding_output, attention_mask=extended_attention_mask, padding_len=padding_len, return_dict=True
        )
        sequence_output = encoder_outputs[0]
        pooled_output = self.pooler(attention_mask, sequence_output)
        return sequence_output, pooled_output


class RecformerForPretraining(LongformerPreTrainedModel):
    """recformer/models.py::RecformerForPretraining (modules only; the losses live in recformer-train)."""

    def __init__(self, config):
        super().__init__(config)
        self.longformer = RecformerModel(config)
        self.lm_head = LongformerLMHead(config)
        self.post_init()


def randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Give every parameter a distinct, non-trivial value so that a mis-mapped key cannot hide."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=generator))


def make_sequence(lengths_items, max_len, cfg, generator):
    """RecFormer-shaped inputs (tokenization.py layout): <s>=0 first (type 0, item position 0, global),
    then per item alternating key (type 1) / value (type 2) tokens with item position k; right padding with
    pad id 1, type 3, item position max_item_embeddings - 1, attention 0."""
    pad = cfg["pad_token_id"]
    pad_item = cfg["max_item_embeddings"] - 1
    ids, types, items, attn, glob = [], [], [], [], []
    for item_lengths in lengths_items:
        row_ids, row_types, row_items = [0], [0], [0]
        for k, n in enumerate(item_lengths, start=1):
            for t in range(n):
                row_ids.append(int(torch.randint(3, cfg["vocab_size"], (1,), generator=generator)))
                row_types.append(1 if t % 3 == 0 else 2)
                row_items.append(k)
        length = len(row_ids)
        assert length <= max_len
        padn = max_len - length
        ids.append(row_ids + [pad] * padn)
        types.append(row_types + [3] * padn)
        items.append(row_items + [pad_item] * padn)
        attn.append([1] * length + [0] * padn)
        glob.append([1] + [0] * (max_len - 1))
    t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return {
        "input_ids": t(ids),
        "attention_mask": t(attn),
        "token_type_ids": t(types),
        "item_position_ids": t(items),
        "global_attention_mask": t(glob),
    }


def main() -> None:
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    FIXTURES.mkdir(parents=True, exist_ok=True)

    config = RecformerConfig(**CONFIG)
    model = RecformerForPretraining(config)
    randomise(model, generator)
    model.eval()
    item_embedding = 0.5 * torch.randn(ITEM_NUM, CONFIG["hidden_size"], generator=generator)

    # Input cases: padding, several item counts, lengths not multiple of the window (4), a padded-away
    # row whose length is a multiple of the window, and a case with no window padding at all.
    cases = {
        # 4 sequences, max length 18 -> window padding to 20; item counts 3, 1, 5, 1.
        "padded": make_sequence([[4, 3, 5], [6], [3, 2, 4, 3, 5], [1]], 18, CONFIG, generator),
        # 2 sequences of length exactly 8 (a multiple of the window, no window padding).
        "exact": make_sequence([[3, 4], [7]], 8, CONFIG, generator),
        # single-item sequences as used to encode the item catalogue ([<s>] + item tokens).
        "items": make_sequence([[5], [2], [9], [12]], 13, CONFIG, generator),
    }

    with torch.no_grad():
        for name, inputs in cases.items():
            hidden, pooled = model.longformer(
                inputs["input_ids"],
                inputs["attention_mask"],
                inputs["global_attention_mask"],
                inputs["token_type_ids"],
                inputs["item_position_ids"],
            )
            logits = model.lm_head(hidden)
            tensors = {k: v.contiguous() for k, v in inputs.items()}
            tensors["last_hidden_state"] = hidden.float().contiguous()
            tensors["pooler_output"] = pooled.float().contiguous()
            tensors["mlm_logits"] = logits.float().contiguous()
            save_file(tensors, str(FIXTURES / f"case_{name}.safetensors"))

    # Weights in the three official prefix styles.
    pre_sd = model.state_dict()
    torch.save(pre_sd, FIXTURES / "pretraining.bin")
    save_file({k: v.clone().contiguous() for k, v in pre_sd.items()}, str(FIXTURES / "pretraining.safetensors"))
    torch.save(model.longformer.state_dict(), FIXTURES / "model.bin")
    seqrec_sd = {k: v for k, v in pre_sd.items() if k.startswith("longformer.")}
    seqrec_sd["item_embedding.weight"] = item_embedding
    torch.save(seqrec_sd, FIXTURES / "seqrec.bin")
    save_file({"item_embedding": item_embedding.contiguous()}, str(FIXTURES / "seqrec_item_embedding.safetensors"))

    with open(FIXTURES / "config.json", "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "seed": SEED,
        "cases": {k: list(v["input_ids"].shape) for k, v in cases.items()},
        "item_num": ITEM_NUM,
        "note": "model in eval mode (no dropout); parameters re-drawn by randomise() so every key matters",
    }
    with open(FIXTURES / "versions.json", "w") as f:
        json.dump(versions, f, indent=2)
        f.write("\n")
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    print(f"wrote {len(list(FIXTURES.iterdir()))} files, {total / 1024:.0f} KiB, to {FIXTURES}")


if __name__ == "__main__":
    main()
