#!/usr/bin/env python3
"""Side-by-side CPU timing: the RecFormer architecture in PyTorch vs `recformer bench`, one run.

    python3 scripts/bench_vs_pytorch.py [--recformer PATH] [--threads 2] [--steps 3] [--rounds 3]

Never needed by CI. It uses the virtual environment of the parity fixtures (default `<repo>/.venv`,
made by `crates/recformer-model/scripts/gen_fixtures.py`; override with `RECFORMER_VENV`) and the
PyTorch model classes of that script, which follow the official `recformer/models.py`
(`RecformerEmbeddings` + HF transformers 4.28 `LongformerEncoder` + CLS pooler).

For each shape it times, with random weights and full-length synthetic inputs (first token global):
- forward: the sequence vectors, the encoder under `torch.no_grad()` / the Rust model's
  `forward_pooled` without autodiff (the official code has no such path: it computes every token of
  the last layer and the global keys and values of every token);
- train step: forward, in-batch cosine logits / temp against the detached vectors, mean, backward,
  AdamW step (what `recformer bench` does);
and the peak RSS of the process doing both. Each measurement runs in its own process (PyTorch in
a worker of this script, Rust as `recformer bench`), one after the other on the same machine, so
the table compares like with like. Shapes: `minilm` (6 x 384, 12 heads, FFN 1536, 64 x 64 tokens:
the Scientific recipe's encoder), `mini` (6 x 256, 4 heads, FFN 1024, 8 x 512 tokens).

With `--items-model DIR --items-data DIR` (a model directory, e.g. MiniLM converted by
`recformer init`, and a dataset in the official layout) it also times item encoding: PyTorch runs
the official `encode_all_items` loop alone (items pre-tokenised with the model directory's
tokenizer and the official flattening, iid order, batches of 16, padded to the batch's longest
item and then to the window multiple; random weights of the directory's shape), against the
whole `recformer encode-items` process (loading, tokenising, encoding, writing).

Prints a markdown table with the ratios (PyTorch time / ours: above 1 means ours is faster).
With `--rounds N` every measurement runs N times, PyTorch and ours alternating, and the table
shows medians, each ratio the median of the rounds' ratios with their range: on a VM whose speed
drifts (PyTorch's own forward time moved by up to 2x within forty minutes here,
`docs/performance.md`), one round can land on a slow or fast spell.

Then the ceiling table: what the machine's f32 GEMM allows. PyTorch (same threads) times its
matrix products at each shape's largest layer (the FFN's `[batch*tokens, hidden] x [hidden, ffn]`)
and at 2048^3; the model FLOPs of one forward are counted as `recformer bench` counts them
(`recformer_train::throughput`: every Linear that sees every token, the band and the global column;
a training step counts 3x), and so are the FLOPs the Rust model actually computes for the same
vectors (`forward_pooled`: no `key_global` / `value_global` projection of every token, the last
layer for token 0 only). Each row gives PyTorch's achieved rate and the rate the Rust model would
need on its own FLOPs to meet the issue's target (forward >= 2x, training step >= 1.5x PyTorch's
speed), as a share of that GEMM rate: above 100% cannot be met in f32 with those FLOPs, whatever
the kernels.
"""

import argparse
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("RECFORMER_VENV", REPO / ".venv"))
FIXTURE_SCRIPT = REPO / "crates" / "recformer-model" / "scripts" / "gen_fixtures.py"

# name: (layers, hidden, heads, ffn, window, batch, tokens)
SHAPES = {
    "minilm": (6, 384, 12, 1536, 64, 64, 64),
    "mini": (6, 256, 4, 1024, 64, 8, 512),
}


def ensure_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        sys.exit(f"no venv at {VENV}: run {FIXTURE_SCRIPT} once to create it (torch + transformers 4.28)")
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def torch_worker(shape: str, threads: int, steps: int, warmup: int) -> dict:
    """Times one shape in PyTorch (this process) and returns seconds per forward / train step."""
    import torch

    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("gen_fixtures", FIXTURE_SCRIPT)
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)  # defines the classes; its main() is not run

    layers, hidden, heads, ffn, window, batch, tokens = SHAPES[shape]
    config = dict(fx.CONFIG)
    config.update(
        vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, attention_window=[window] * layers, max_token_num=tokens,
        max_position_embeddings=tokens + 2, pad_token_id=0, max_item_embeddings=51, layer_norm_eps=1e-12,
    )
    model = fx.RecformerModel(fx.RecformerConfig(**config))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30000, (batch, tokens), generator=g)
    ids[:, 0] = 101
    attention = torch.ones(batch, tokens, dtype=torch.long)
    glob = torch.zeros(batch, tokens, dtype=torch.long)
    glob[:, 0] = 1
    types = torch.full((batch, tokens), 2, dtype=torch.long)
    types[:, 0] = 0
    items = torch.clamp((torch.arange(tokens) + 29) // 30, max=50).repeat(batch, 1)
    args = (ids, attention, glob, types, items)

    def encode():
        out = model(*args)
        return out[1] if isinstance(out, tuple) else out.pooler_output

    model.eval()
    with torch.no_grad():
        for _ in range(warmup):
            encode()
        t0 = time.perf_counter()
        for _ in range(steps):
            encode()
        forward_s = (time.perf_counter() - t0) / steps

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)

    def step():
        z = encode()
        zn = torch.nn.functional.normalize(z, dim=-1)
        logits = zn @ torch.nn.functional.normalize(z.detach(), dim=-1).T / 0.05
        loss = logits.mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    train_s = (time.perf_counter() - t0) / steps
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"forward_s": forward_s, "train_s": train_s, "peak_mib": peak_mib}


def torch_gemm_worker(threads: int) -> dict:
    """f32 GEMM rates of PyTorch (oneDNN/MKL) here: each shape's FFN product and 2048^3, GFLOP/s."""
    import torch

    torch.set_num_threads(threads)
    sizes = {f"{name} ffn": (batch * tokens, hidden, ffn)
             for name, (_, hidden, _, ffn, _, batch, tokens) in SHAPES.items()}
    sizes["2048^3"] = (2048, 2048, 2048)
    rates = {}
    for label, (m, k, n) in sizes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            a @ b
            reps += 1
        rates[label] = 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9
    return rates


def item_token_ids(model_dir: Path, data_dir: Path, cfg: dict) -> list:
    """`[<s>] + flattened item tokens` per item in iid order (official `encode_item`: per
    attribute `tokenize(key) + tokenize(value)` cut to `max_attr_length`, at most
    `max_attr_num` attributes, the whole cut to `max_token_num`)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    meta = json.loads((data_dir / "meta_data.json").read_text())
    smap = json.loads((data_dir / "smap.json").read_text())
    by_row = sorted(smap.items(), key=lambda kv: kv[1])
    cls = tok.token_to_id("[CLS]")
    if cls is None:
        cls = tok.token_to_id("<s>")
    out = []
    for key, _row in by_row:
        ids = [cls]
        for name, value in list(meta[key].items())[: cfg.get("max_attr_num", 3)]:
            pieces = tok.encode(name, add_special_tokens=False).ids + tok.encode(
                str(value), add_special_tokens=False).ids
            ids += pieces[: cfg.get("max_attr_length", 32)]
        out.append(ids[: cfg["max_token_num"]])
    return out


def torch_items_worker(model_dir: str, data_dir: str, threads: int) -> dict:
    """The official `encode_all_items` loop alone, timed once over every item."""
    import torch

    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("gen_fixtures", FIXTURE_SCRIPT)
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    config = dict(fx.CONFIG)
    for k in ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "attention_window", "max_token_num", "max_position_embeddings", "pad_token_id",
              "max_item_embeddings", "layer_norm_eps", "type_vocab_size"]:
        if k in cfg:
            config[k] = cfg[k]
    model = fx.RecformerModel(fx.RecformerConfig(**config)).eval()
    items = item_token_ids(Path(model_dir), Path(data_dir), cfg)
    pad = cfg["pad_token_id"]
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(items), 16):
            batch = items[start:start + 16]
            l = max(len(x) for x in batch)
            ids = torch.full((len(batch), l), pad, dtype=torch.long)
            att = torch.zeros(len(batch), l, dtype=torch.long)
            types = torch.zeros(len(batch), l, dtype=torch.long)
            pos = torch.full((len(batch), l), pad, dtype=torch.long)
            for i, x in enumerate(batch):
                ids[i, :len(x)] = torch.tensor(x)
                att[i, :len(x)] = 1
                types[i, 1:len(x)] = 2
                pos[i, 1:len(x)] = 1
            glob = torch.zeros_like(att)
            glob[:, 0] = 1
            model(ids, att, glob, types, pos)
    seconds = time.perf_counter() - t0
    return {"items": len(items), "encode_s": seconds,
            "mean_tokens": sum(map(len, items)) / len(items),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def rust_env(device: str, threads: int) -> tuple:
    """`device` as `recformer --device` takes it, and the environment: `ndarray+fma` is NdArray
    with `RECFORMER_GEMM=fma` (the FMA products, matrixmultiply's bits, where AMX would be the
    default), `ndarray+amx` with `RECFORMER_GEMM=amx`, so that both paths run in the same rounds."""
    device, _, gemm = device.partition("+")
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    if gemm:
        env["RECFORMER_GEMM"] = gemm
    return device, env


def run_rust_items(binary: str, device: str, model_dir: str, data_dir: str, threads: int) -> dict:
    import tempfile

    device, env = rust_env(device, threads)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["/usr/bin/time", "-f", "wall_s=%e peak_kib=%M", binary, "encode-items", "--model", model_dir,
               "--data", data_dir, "--out", str(Path(tmp) / "items.safetensors"), "--device", device, "--quiet"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    m = re.search(r"wall_s=([\d.]+) peak_kib=(\d+)", out.stderr)
    return {"encode_s": float(m.group(1)), "peak_mib": int(m.group(2)) / 1024}


def run_torch(shape: str, threads: int, steps: int, warmup: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", shape, "--threads", str(threads),
         "--steps", str(steps), "--warmup", str(warmup)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_rust(binary: str, device: str, shape: str, threads: int, steps: int, warmup: int) -> dict:
    _, _, _, _, _, batch, tokens = SHAPES[shape]
    device, env = rust_env(device, threads)
    cmd = ["/usr/bin/time", "-f", "peak_kib=%M", binary, "bench", "--device", device, "--preset", shape,
           "--batch", str(batch), "--tokens", str(tokens), "--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    row = [line for line in out.stdout.splitlines() if line.startswith(f"| {device} |")][-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    peak = int(re.search(r"peak_kib=(\d+)", out.stderr).group(1))
    return {"forward_s": float(cells[3]) / 1e3, "train_s": float(cells[6]) / 1e3, "peak_mib": peak / 1024}


def median(xs: list) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def medians(runs: list) -> dict:
    """Each key's median over the rounds."""
    return {k: median([r[k] for r in runs]) for k in runs[0] if isinstance(runs[0][k], (int, float))}


def print_rows(name: str, size: str, refs: list, ours: dict, rows: list) -> None:
    """One table row per (work, key, unit): PyTorch's median over the rounds, then each device's
    median and the median of the rounds' ratios (time: PyTorch / ours, >1 = ours faster; memory:
    ours / PyTorch, <1 = ours smaller), with their range when there are several rounds. Round i
    of ours ran right after round i of PyTorch, so a ratio compares neighbours in time."""
    fmt = lambda v, unit: f"{v:.3f} {unit}" if unit == "s" else f"{v:.0f} {unit}"
    for work, key, unit in rows:
        cells = [fmt(median([r[key] for r in refs]), unit)]
        for runs in ours.values():
            cells.append(fmt(median([x[key] for x in runs]), unit))
            per = [r[key] / x[key] if unit == "s" else x[key] / r[key] for r, x in zip(refs, runs)]
            spread = f" ({min(per):.2f}-{max(per):.2f})" if len(per) > 1 else ""
            cells.append(f"{median(per):.2f}x{spread}")
        print(f"| {name} | {size} | {work} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recformer", default=os.environ.get("RECFORMER", str(
        Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "recformer")))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1,
                        help="PyTorch and ours measured this many times, alternating; medians are printed")
    parser.add_argument("--shapes", default="minilm,mini")
    parser.add_argument("--devices", default="ndarray,flex",
                        help="ours: recformer devices; `ndarray+fma` / `ndarray+amx` are NdArray with "
                             "RECFORMER_GEMM=fma / amx")
    parser.add_argument("--items-model", help="model directory for the item-encoding rows")
    parser.add_argument("--items-data", help="dataset (official layout) for the item-encoding rows")
    parser.add_argument("--worker")
    a = parser.parse_args()
    if a.worker == "gemm":
        print(json.dumps(torch_gemm_worker(a.threads)))
        return
    if a.worker == "items":
        print(json.dumps(torch_items_worker(a.items_model, a.items_data, a.threads)))
        return
    if a.worker:
        print(json.dumps(torch_worker(a.worker, a.threads, a.steps, a.warmup)))
        return

    import platform

    import torch
    import transformers

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores; threads {a.threads}; steps {a.steps} (+{a.warmup} warm-up); "
          f"rounds {a.rounds} (medians; ratio ranges in brackets)")
    print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), transformers "
          f"{transformers.__version__}, python {platform.python_version()}; recformer: {a.recformer}"
          f" (RECFORMER_GEMM={os.environ.get('RECFORMER_GEMM', 'unset: AMX where usable')})")
    print()
    print("| shape | batch x tokens | work | PyTorch | " + " | ".join(
        f"ours, {d} | ratio" for d in a.devices.split(",")) + " |")
    print("|---|---|---|---|" + "---|---|" * len(a.devices.split(",")))
    measured = {}
    for shape in a.shapes.split(","):
        _, _, _, _, _, batch, tokens = SHAPES[shape]
        refs, ours = [], {d: [] for d in a.devices.split(",")}
        for _ in range(a.rounds):
            refs.append(run_torch(shape, a.threads, a.steps, a.warmup))
            for d in ours:
                ours[d].append(run_rust(a.recformer, d, shape, a.threads, a.steps, a.warmup))
        measured[shape] = medians(refs)
        print_rows(shape, f"{batch} x {tokens}", refs, ours, [
            ("forward", "forward_s", "s"), ("train step", "train_s", "s"), ("peak RSS", "peak_mib", "MiB")])
        sys.stdout.flush()
    if a.items_model and a.items_data:
        refs, ours = [], {d: [] for d in a.devices.split(",")}
        for _ in range(a.rounds):
            out = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", "items", "--threads", str(a.threads),
                 "--items-model", a.items_model, "--items-data", a.items_data],
                check=True, capture_output=True, text=True,
            )
            refs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            for d in ours:
                ours[d].append(run_rust_items(a.recformer, d, a.items_model, a.items_data, a.threads))
        name = Path(a.items_model).name
        label = f"{refs[0]['items']} items, {refs[0]['mean_tokens']:.0f} tokens avg"
        print_rows(name, label, refs, ours, [
            ("encode items (official loop alone vs whole process)", "encode_s", "s"),
            ("peak RSS (encode)", "peak_mib", "MiB")])
    sys.stdout.flush()
    print_ceiling(measured, a.threads)


def forward_gflop(shape: str) -> float:
    """Model FLOPs of one forward, as `recformer_train::throughput::model_flops_per_token` counts
    (HF's formulation: every Linear sees every token, `key_global` / `value_global` included)."""
    layers, h, _, f, window, batch, tokens = SHAPES[shape]
    band = min(2 * (window // 2) + 1, tokens)
    per_token = layers * (2 * (6 * h * h + 2 * h * f) + 4 * band * h + 4 * h)
    return per_token * batch * tokens / 1e9


def pooled_gflop(shape: str) -> float:
    """FLOPs of the sequence vectors as `RecformerModel::forward_pooled` computes them: the global
    attention of token 0 through the `*_global` weights (no projection of every token), every layer
    but the last in full, the last for token 0 only."""
    layers, h, heads, f, window, batch, tokens = SHAPES[shape]
    band = min(2 * (window // 2) + 1, tokens)
    global_row = 2 * 2 * heads * h  # token 0's scores and weighted sum over every token
    full_layer = 2 * (4 * h * h + 2 * h * f) + 4 * band * h + global_row
    last_layer = global_row + 2 * (3 * h * h + 2 * h * f) / tokens  # query_global, dense, FFN
    return ((layers - 1) * full_layer + last_layer) * batch * tokens / 1e9


def print_ceiling(measured: dict, threads: int) -> None:
    """The GEMM ceiling table (module docs)."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", "gemm", "--threads", str(threads)],
        check=True, capture_output=True, text=True,
    )
    rates = json.loads(out.stdout.strip().splitlines()[-1])
    print()
    print("PyTorch f32 GEMM here (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
    print()
    print("| shape | work | model GFLOP (HF) | ours computes | PyTorch s | PyTorch GFLOP/s | target | "
          "GFLOP/s we need | needed / PyTorch's GEMM at the FFN shape | needed / 2048^3 GEMM |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape, ref in measured.items():
        gflop, ours = forward_gflop(shape), pooled_gflop(shape)
        for work, key, flops, computed, factor in [
                ("forward", "forward_s", gflop, ours, 2.0),
                ("train step", "train_s", 3 * gflop, 3 * ours, 1.5)]:
            achieved = flops / ref[key]
            needed = computed / ref[key] * factor
            print(f"| {shape} | {work} | {flops:.1f} | {computed:.1f} | {ref[key]:.3f} | {achieved:.0f} | "
                  f"{factor}x | {needed:.0f} | {needed / rates[f'{shape} ffn']:.0%} | "
                  f"{needed / rates['2048^3']:.0%} |")
    sys.stdout.flush()


if __name__ == "__main__":
    ensure_venv()
    main()
