//! Encoder throughput measurement used by `recformer bench` (and its
//! synthetic inputs by the criterion benches, `benches/backends.rs`):
//! forward (item/sequence encoding) and a full training step (forward + in-batch contrastive
//! loss + backward + AdamW) on synthetic full-length inputs.
//!
//! Model FLOPs count the useful work only: every Linear that must see every token (2·in·out per
//! token: query, key, value, key_global, value_global, output, FFN), sliding-window attention with
//! its band (4·(w+1)·hidden per token and layer, QK and AV) and the global column. A training step
//! counts 3× the forward FLOPs (backward ≈ 2× forward).

use std::time::Instant;

use crate::error::Result;
use crate::optim::FusedAdamW;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use recformer_model::{cosine_logits, Precision, RecformerConfig, RecformerInput, RecformerModel};

/// What to measure.
#[derive(Debug, Clone)]
pub struct ThroughputArgs {
    /// Device name for the report (`cpu`, `wgpu`, `cuda`).
    pub device: String,
    /// `base`, `mini` or `tiny`.
    pub preset: String,
    /// Sequences per batch.
    pub batch: usize,
    /// Tokens per sequence (all real).
    pub tokens: usize,
    /// Timed repetitions.
    pub steps: usize,
    /// Untimed warm-up repetitions (kernel compilation, autotune).
    pub warmup: usize,
    /// Float type of the products and activations (`recformer_model::precision`).
    pub precision: Precision,
}

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct ThroughputRow {
    /// Device name.
    pub device: String,
    /// Preset name.
    pub preset: String,
    /// Sequences per batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub tokens: usize,
    /// Seconds per forward pass (no autodiff).
    pub forward_s: f64,
    /// Seconds per training step.
    pub train_s: f64,
    /// Model FLOPs per token of one forward pass.
    pub flops_per_token: f64,
}

impl ThroughputRow {
    /// Markdown table header matching [`ThroughputRow::markdown`].
    pub const HEADER: &'static str = "| device | preset | batch x tokens | forward ms | forward tok/s | forward TFLOP/s | train step ms | train tok/s | train TFLOP/s |\n|---|---|---|---|---|---|---|---|---|";

    /// The row as a markdown table line.
    pub fn markdown(&self) -> String {
        let tokens = (self.batch * self.tokens) as f64;
        format!(
            "| {} | {} | {} x {} | {:.1} | {:.0} | {:.3} | {:.1} | {:.0} | {:.3} |",
            self.device,
            self.preset,
            self.batch,
            self.tokens,
            self.forward_s * 1e3,
            tokens / self.forward_s,
            tokens * self.flops_per_token / self.forward_s / 1e12,
            self.train_s * 1e3,
            tokens / self.train_s,
            3.0 * tokens * self.flops_per_token / self.train_s / 1e12
        )
    }
}

/// The model config of a preset, with room for `tokens` tokens.
pub fn preset(name: &str, tokens: usize) -> Result<RecformerConfig> {
    let mut c = recformer_model::presets::by_name(name)?;
    c.max_token_num = c.max_token_num.max(tokens);
    let c = recformer_model::presets::fit_positions(c);
    c.validate()?;
    Ok(c)
}

/// A full batch of `tokens` real tokens per row: `<s>` then items of 30 tokens.
pub fn synthetic_input<B: Backend>(
    c: &RecformerConfig,
    batch: usize,
    tokens: usize,
    device: &B::Device,
) -> RecformerInput<B> {
    let n = batch * tokens;
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut items = Vec::with_capacity(n);
    let mut state = 12345u64;
    for _ in 0..batch {
        for t in 0..tokens {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if t == 0 {
                ids.push(0i64.max(c.pad_token_id as i64 + 1));
                types.push(0);
                items.push(0);
            } else {
                let id = 5 + (state >> 33) as i64 % (c.vocab_size as i64 - 10);
                ids.push(if id == c.pad_token_id as i64 {
                    id + 1
                } else {
                    id
                });
                types.push(if (t - 1) % 30 < 2 { 1 } else { 2 });
                items.push((1 + (t - 1) / 30).min(c.max_item_embeddings - 1) as i64);
            }
        }
    }
    let t =
        |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [batch, tokens]), device);
    RecformerInput::with_cls_global(
        t(ids),
        Tensor::ones([batch, tokens], device),
        t(types),
        t(items),
    )
}

/// Useful model FLOPs per token of one forward pass (see the module docs).
pub fn model_flops_per_token(c: &RecformerConfig, tokens: usize) -> f64 {
    let h = c.hidden_size as f64;
    let f = c.intermediate_size as f64;
    // query, key, value, key_global, value_global over every token, attention output, FFN.
    let linear = 2.0 * (6.0 * h * h + 2.0 * h * f);
    let w = c.attention_window.iter().copied().max().unwrap_or(0) as f64 / 2.0;
    let band = (2.0 * w + 1.0).min(tokens as f64);
    let attention = 4.0 * band * h + 4.0 * h; // local band + the global column; global row amortised
    c.num_hidden_layers as f64 * (linear + attention)
}

/// Measures forward and training-step time on `device`.
///
/// # Errors
/// An unknown preset, or a preset that cannot hold `tokens` tokens.
pub fn measure<B: AutodiffBackend>(device: B::Device, a: &ThroughputArgs) -> Result<ThroughputRow> {
    let c = preset(&a.preset, a.tokens)?;
    let model: RecformerModel<B> = c.init_model(&device).with_precision(a.precision);
    let flops_tok = model_flops_per_token(&c, a.tokens);

    // Forward (inference, no autodiff graph).
    let infer = model.valid();
    let input = synthetic_input::<B::InnerBackend>(&c, a.batch, a.tokens, &device);
    for _ in 0..a.warmup {
        let _ = infer.forward_pooled(input.clone()).into_data();
    }
    let t0 = Instant::now();
    for _ in 0..a.steps {
        let _ = infer.forward_pooled(input.clone()).into_data();
    }
    let fwd = t0.elapsed().as_secs_f64() / a.steps as f64;

    // Training step: forward + in-batch contrastive loss + backward + AdamW.
    let mut model = model;
    let mut optim = FusedAdamW::new(0.0, 1e-8).init();
    let input = synthetic_input::<B>(&c, a.batch, a.tokens, &device);
    let mut step = |model: RecformerModel<B>| {
        let z = model.forward_pooled(input.clone());
        let logits = cosine_logits(z.clone(), z.detach(), c.temp);
        let loss = logits.mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(5e-5, model, grads);
        let _ = loss.into_data();
        model
    };
    for _ in 0..a.warmup {
        model = step(model);
    }
    let t0 = Instant::now();
    for _ in 0..a.steps {
        model = step(model);
    }
    let train = t0.elapsed().as_secs_f64() / a.steps as f64;

    Ok(ThroughputRow {
        // "cuda bf16": the precision in the report's device column (f32 unmarked).
        device: match a.precision {
            Precision::F32 => a.device.clone(),
            p => format!("{} {}", a.device, p.name()),
        },
        preset: a.preset.clone(),
        batch: a.batch,
        tokens: a.tokens,
        forward_s: fwd,
        train_s: train,
        flops_per_token: flops_tok,
    })
}
