//! `recformer evaluate`: full-ranking evaluation (official Ranker) of a model on a split.

use std::path::PathBuf;

use anyhow::{bail, Result};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use recformer_data::Split;
use recformer_train::ModelDir;
use recformer_train::{
    encode_all_items, evaluate, ColdStartMetrics, EvalOptions, InputBuilder, TrainingItems,
};

use super::common::{load_catalogue, parse_device, with_backend};
use super::Bars;

/// Arguments of `evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Model directory or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset in the official finetuning layout.
    #[arg(long)]
    pub data: PathBuf,
    /// val (input = train, label = val) or test (input = train + val, label = test).
    #[arg(long, default_value = "test", value_parser = ["val", "test"])]
    pub split: String,
    /// Encode the item matrix with the given model (zero-shot), ignoring any stored matrix.
    #[arg(long)]
    pub zero_shot: bool,
    /// Also report the users whose target item (val item for --split val, test item for --split
    /// test) occurs in a training sequence (`in_set`) and those whose target never does (`cold`),
    /// each with its own metrics, as in the paper's Table 3. Only train.json counts: for --split
    /// test, a target seen only as a validation item is cold.
    #[arg(long)]
    pub cold_start: bool,
    /// Remove each user's history items from the ranking (official: kept).
    #[arg(long)]
    pub exclude_history: bool,
    /// Evaluate only the first N users.
    #[arg(long)]
    pub max_users: Option<usize>,
    /// Users per batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Item index written by `encode-items`, used instead of the model directory's own.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: EvaluateArgs) -> Result<()> {
    anyhow::ensure!(a.batch_size > 0, "--batch-size must be at least 1");
    let kind = parse_device(&a.device)?;
    with_backend!(kind, B, device, { eval::<B>(&a, &device) })
}

/// The item matrix to rank against: the stored one (model directory `items.safetensors`, checked
/// against the catalogue's item keys, or a finetuned checkpoint's `item_embedding.weight`) unless
/// `zero_shot`, else freshly encoded.
#[allow(clippy::too_many_arguments)]
pub fn item_matrix<B: Backend>(
    md: &ModelDir,
    loaded_items: Option<Tensor<B, 2>>,
    model: &recformer_model::RecformerModel<B>,
    keys: &[String],
    tokens: &[recformer_data::ItemTokens],
    zero_shot: bool,
    device: &B::Device,
    bars: &Bars,
) -> Result<(Tensor<B, 2>, &'static str)> {
    let n = tokens.len();
    if !zero_shot {
        if let Some(index) = md.load_items::<B>(device)? {
            index.check_keys(keys).map_err(|e| {
                anyhow::anyhow!("{e}; pass --zero-shot to encode the items with this model")
            })?;
            return Ok((index.vectors, "stored"));
        }
        if let Some(t) = loaded_items {
            let [rows, _] = t.dims();
            if rows != n {
                bail!(
                    "the model's stored item matrix has {rows} rows but the dataset has {n} items; pass --zero-shot to encode the items with this model"
                );
            }
            return Ok((t, "stored"));
        }
        bars.say("no stored item matrix in the model directory: encoding the items with the model");
    }
    let builder = InputBuilder::new(md.tokenizer(), md.data_config());
    Ok((
        encode_all_items(model, tokens, &builder, 64, device, bars),
        "encoded",
    ))
}

fn eval<B: Backend>(a: &EvaluateArgs, device: &B::Device) -> Result<()> {
    let bars = Bars::new(a.quiet);
    let mut md = ModelDir::open(&a.model)?;
    if let Some(items) = &a.items {
        md.items = Some(items.clone());
    }
    let cat = load_catalogue(&a.data, md.tokenizer(), &md.data_config(), &|m| bars.say(m))?;
    let loaded = md.load_without_mlm_head::<B>(device)?;
    let (items, source) = item_matrix(
        &md,
        loaded.item_embedding,
        &loaded.model,
        &cat.dataset.item_keys,
        &cat.tokens,
        a.zero_shot,
        device,
        &bars,
    )?;
    let split = if a.split == "val" {
        Split::Val
    } else {
        Split::Test
    };
    let examples = cat.dataset.eval_examples(split);
    let options = EvalOptions {
        batch_size: a.batch_size,
        temp: md.config().temp,
        exclude_history: a.exclude_history,
        max_users: a.max_users,
    };
    let builder = InputBuilder::new(md.tokenizer(), md.data_config());
    let ev = evaluate(
        &loaded.model,
        &items,
        &cat.tokens,
        &examples,
        &builder,
        &options,
        device,
        &bars,
    )?;
    let groups = a.cold_start.then(|| {
        let labels: Vec<usize> = examples[..ev.ranks.len()].iter().map(|e| e.label).collect();
        ColdStartMetrics::from_ranks(&labels, &ev.ranks, &TrainingItems::of_dataset(&cat.dataset))
    });
    let mut out = super::baselines::metrics_json(&ev.metrics, groups.as_ref())?;
    let obj = out.as_object_mut().expect("metrics serialise to an object");
    obj.insert("split".into(), a.split.clone().into());
    obj.insert("item_matrix".into(), source.into());
    obj.insert(
        "official_batch_mean".into(),
        serde_json::to_value(ev.batch_mean)?,
    );
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
