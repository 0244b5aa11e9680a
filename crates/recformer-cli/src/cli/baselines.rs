//! `recformer baselines`: the reference baselines of a dataset (popularity, random and, with a
//! model, the text baseline of its untouched encoder), as one JSON object.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recformer_data::{EvalExample, FinetuneDataset, Split};
use recformer_train::metrics::{
    metrics_from_ranks, popularity_scores, random_ranks, static_score_ranks, Metrics, RankingCase,
};
use recformer_train::ModelDir;
use recformer_train::{evaluate_newest_item, ColdStartMetrics, EvalOptions, TrainingItems};
use serde_json::{Map, Value};

use super::common::{load_catalogue, parse_device, with_backend};
use super::evaluate::item_matrix;
use super::Bars;

/// Arguments of `baselines`.
#[derive(Debug, clap::Args)]
pub struct BaselinesArgs {
    /// Dataset in the official finetuning layout.
    #[arg(long)]
    pub data: PathBuf,
    /// Model directory or run directory: adds `text_newest_item`, the text baseline of its
    /// encoder (every item encoded zero-shot, as `evaluate --zero-shot` does; a user is scored by
    /// the cosine of the newest history item's vector to every item).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// val (input = train, label = val) or test (input = train + val, label = test).
    #[arg(long, default_value = "test", value_parser = ["val", "test"])]
    pub split: String,
    /// Also report each baseline on the users whose target item occurs in a training sequence
    /// (`in_set`) and on those whose target never does (`cold`), as in the paper's Table 3.
    /// Only train.json counts: for --split test, a target seen only as a validation item is cold.
    #[arg(long)]
    pub cold_start: bool,
    /// Evaluate only the first N users.
    #[arg(long)]
    pub max_users: Option<usize>,
    /// Seed of the random baseline.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda (used by the model).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress output and no table on stderr.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: BaselinesArgs) -> Result<()> {
    let kind = parse_device(&a.device)?;
    with_backend!(kind, B, device, { baselines::<B>(&a, &device) })
}

/// One metrics object (the fields `evaluate` prints), plus `in_set` / `cold` when `groups` is given.
pub fn metrics_json(metrics: &Metrics, groups: Option<&ColdStartMetrics>) -> Result<Value> {
    let mut v = serde_json::to_value(metrics)?;
    if let Some(g) = groups {
        let obj = v.as_object_mut().expect("metrics serialise to an object");
        obj.insert("in_set".into(), serde_json::to_value(g.in_set)?);
        obj.insert("cold".into(), serde_json::to_value(g.cold)?);
    }
    Ok(v)
}

fn baselines<B: Backend>(a: &BaselinesArgs, device: &B::Device) -> Result<()> {
    let bars = Bars::new(a.quiet);
    let split = if a.split == "val" {
        Split::Val
    } else {
        Split::Test
    };
    // With a model, the catalogue is tokenised by its tokenizer; without, only the ids matter.
    let model = match &a.model {
        Some(dir) => {
            let md = ModelDir::open(dir)?;
            let cat = load_catalogue(&a.data, md.tokenizer(), &md.data_config(), &|m| bars.say(m))?;
            Some((md, cat))
        }
        None => None,
    };
    let loaded_dataset;
    let dataset: &FinetuneDataset = match &model {
        Some((_, cat)) => &cat.dataset,
        None => {
            loaded_dataset = FinetuneDataset::load(&a.data)
                .map_err(|e| anyhow::anyhow!("loading dataset {}: {e}", a.data.display()))?;
            &loaded_dataset
        }
    };
    let mut examples: Vec<EvalExample> = dataset.eval_examples(split);
    if let Some(m) = a.max_users {
        examples.truncate(m);
    }
    let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let training = a.cold_start.then(|| TrainingItems::of_dataset(dataset));
    let cases = RankingCase::of_examples(&examples);
    let n = dataset.num_items();

    let mut rows: Vec<(&str, Vec<usize>)> = vec![
        (
            "popularity",
            static_score_ranks(&popularity_scores(n, dataset.train.values()), &cases, false),
        ),
        (
            "random",
            random_ranks(n, &cases, false, &mut ChaCha8Rng::seed_from_u64(a.seed)),
        ),
    ];
    if let Some((md, cat)) = &model {
        let loaded = md.load_without_mlm_head::<B>(device)?;
        let (items, _) = item_matrix(
            md,
            None,
            &loaded.model,
            &cat.dataset.item_keys,
            &cat.tokens,
            true,
            device,
            &bars,
        )?;
        let options = EvalOptions {
            batch_size: 256,
            temp: md.config().temp,
            exclude_history: false,
            max_users: None,
        };
        let ev = evaluate_newest_item(&items, &examples, &options, &bars)?;
        rows.push(("text_newest_item", ev.ranks));
    }

    let mut out = Map::new();
    let mut table = vec![
        format!(
            "{} split, {} users, {} items (full ranking){}",
            a.split,
            examples.len(),
            n,
            match &training {
                Some(t) => format!(", {} items in training sequences", t.len()),
                None => String::new(),
            }
        ),
        "| baseline | users | NDCG@10 | Recall@10 | NDCG@50 | Recall@50 | MRR |".into(),
        "|---|---:|---:|---:|---:|---:|---:|".into(),
    ];
    let line = |name: &str, m: &Metrics| {
        format!(
            "| {name} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            m.users, m.ndcg_10, m.recall_10, m.ndcg_50, m.recall_50, m.mrr
        )
    };
    for (name, ranks) in &rows {
        let whole = metrics_from_ranks(ranks);
        let groups = training
            .as_ref()
            .map(|t| ColdStartMetrics::from_ranks(&labels, ranks, t));
        table.push(line(name, &whole));
        if let Some(g) = &groups {
            table.push(line(&format!("{name} (in-set)"), &g.in_set));
            table.push(line(&format!("{name} (cold)"), &g.cold));
        }
        out.insert((*name).into(), metrics_json(&whole, groups.as_ref())?);
    }
    bars.say(&table.join("\n"));
    println!("{}", serde_json::to_string(&Value::Object(out))?);
    Ok(())
}
