//! `recformer recommend`: top-k items for a history, including cold-start items given as text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use recformer::ModelDir;
use recformer_data::ItemMeta;
use recformer_model::l2_normalize;
use recformer_train::{encode_all_items, InputBuilder};
use serde_json::json;

use super::common::{load_catalogue, parse_device, with_backend};
use super::evaluate::item_matrix;
use super::Bars;

/// Arguments of `recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// Model directory or run directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset in the official finetuning layout (its meta_data.json is the catalogue).
    #[arg(long)]
    pub data: PathBuf,
    /// One history as comma-separated item keys, oldest first.
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "users",
        required_unless_present = "users"
    )]
    pub history: Vec<String>,
    /// JSON file {"user": ["KEY", ...], ...} with one history (oldest first) per user.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Number of recommendations.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Do not recommend items already in the history.
    #[arg(long)]
    pub exclude_history: bool,
    /// Cold-start items not in the trained catalogue: JSON {"KEY": {"title": .., "brand": .., "category": ..}}.
    #[arg(long)]
    pub new_items: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// cpu (the default CPU backend), flex, ndarray, wgpu or cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: RecommendArgs) -> Result<()> {
    anyhow::ensure!(a.k > 0, "--k must be at least 1");
    let kind = parse_device(&a.device)?;
    with_backend!(kind, B, device, { recommend::<B>(&a, &device) })
}

/// Reads cold-start items, naming the file, item and field of any problem.
pub fn read_new_items(path: &Path) -> Result<Vec<(String, ItemMeta)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| {
            format!(
                "{}: expected a JSON object {{\"KEY\": {{\"title\": ..}}}}",
                path.display()
            )
        })?;
    let mut out = Vec::with_capacity(obj.len());
    for (key, v) in obj {
        let field = |name: &str, required: bool| -> Result<String> {
            match v.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Array(parts)) if name == "category" => Ok(parts
                    .iter()
                    .map(|p| {
                        p.as_str().map(str::to_string).with_context(|| {
                            format!(
                                "{}: item {key:?}: field `category` must hold strings",
                                path.display()
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
                    .join(" ")),
                None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
                None | Some(serde_json::Value::Null) => {
                    bail!("{}: item {key:?}: missing field `{name}`", path.display())
                }
                Some(other) => bail!(
                    "{}: item {key:?}: field `{name}` must be a string, found {other}",
                    path.display()
                ),
            }
        };
        let meta = ItemMeta::new(
            field("title", true)?,
            field("brand", false)?,
            field("category", false)?,
        );
        out.push((key, meta));
    }
    Ok(out)
}

fn read_users(path: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| {
            format!(
                "{}: expected a JSON object {{\"user\": [\"KEY\", ...]}}",
                path.display()
            )
        })?;
    obj.into_iter()
        .map(|(user, v)| {
            let keys = v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|k| k.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .with_context(|| {
                    format!(
                        "{}: user {user:?}: expected a list of item keys",
                        path.display()
                    )
                })?;
            Ok((user, keys))
        })
        .collect()
}

fn recommend<B: Backend>(a: &RecommendArgs, device: &B::Device) -> Result<()> {
    let bars = Bars::new(a.quiet);
    let md = ModelDir::open(&a.model)?;
    let dcfg = md.data_config();
    let mut cat = load_catalogue(&a.data, &md.tokenizer, &dcfg, &|m| bars.say(m))?;
    let loaded = md.load::<B>(device)?;
    let (mut items, _) = item_matrix(
        &md,
        loaded.item_embedding,
        &loaded.model,
        &cat.tokens,
        false,
        device,
        &bars,
    )?;
    let builder = InputBuilder::new(&md.tokenizer, dcfg);
    let mut keys = cat.dataset.item_keys.clone();
    let mut titles: Vec<String> = cat
        .dataset
        .items
        .iter()
        .map(|i| i.title().to_string())
        .collect();
    let mut index: HashMap<String, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    if let Some(path) = &a.new_items {
        let new = read_new_items(path)?;
        if !new.is_empty() {
            let metas: Vec<ItemMeta> = new.iter().map(|(_, m)| m.clone()).collect();
            let tokens = md.tokenizer.encode_catalogue(&metas, &dcfg)?;
            let vecs = encode_all_items(&loaded.model, &tokens, &builder, 64, device, &bars);
            items = Tensor::cat(vec![items, vecs], 0);
            for ((key, meta), t) in new.into_iter().zip(tokens) {
                if index.contains_key(&key) {
                    bail!(
                        "{}: item {key:?} is already in the catalogue",
                        path.display()
                    );
                }
                index.insert(key.clone(), keys.len());
                keys.push(key);
                titles.push(meta.title().to_string());
                cat.tokens.push(t);
            }
            bars.say(&format!(
                "added {} cold-start items from {}",
                metas.len(),
                path.display()
            ));
        }
    }
    let users: Vec<(String, Vec<String>)> = match &a.users {
        Some(p) => read_users(p)?,
        None => vec![("history".to_string(), a.history.clone())],
    };
    let items_n = l2_normalize(items);
    let [n, _] = items_n.dims();
    let k = a.k.min(n);
    let mut results = Vec::new();
    for (user, hist_keys) in &users {
        let rows: Vec<usize> = hist_keys
            .iter()
            .map(|key| {
                index.get(key.trim()).copied().with_context(|| {
                    format!(
                        "user {user:?}: item {key:?} is neither in {} nor in --new-items",
                        a.data.display()
                    )
                })
            })
            .collect::<Result<_>>()?;
        let (_, input) = builder.batch::<B>(&[rows.as_slice()], &cat.tokens, device);
        let seq = l2_normalize(loaded.model.forward(input).pooler_output);
        let scores: Vec<f32> = seq
            .matmul(items_n.clone().transpose())
            .div_scalar(md.config.temp)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| anyhow::anyhow!("reading scores: {e:?}"))?;
        let mut order: Vec<usize> = (0..n)
            .filter(|i| !(a.exclude_history && rows.contains(i)))
            .collect();
        order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]).then(x.cmp(&y)));
        order.truncate(k);
        results.push((user.clone(), rows, order, scores));
    }
    if a.json {
        let out: Vec<_> = results
            .iter()
            .map(|(user, rows, order, scores)| {
                json!({
                    "user": user,
                    "history": rows.iter().map(|&r| json!({"key": keys[r], "title": titles[r]})).collect::<Vec<_>>(),
                    "recommendations": order.iter().map(|&r| json!({"key": keys[r], "title": titles[r], "score": scores[r]})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (user, rows, order, scores) in &results {
            println!("{user}: history (oldest first)");
            for &r in rows {
                println!("    {:<14} {}", keys[r], titles[r]);
            }
            println!("  top {k}:");
            for (rank, &r) in order.iter().enumerate() {
                println!(
                    "  {:>3}. {:<14} {:>7.3}  {}",
                    rank + 1,
                    keys[r],
                    scores[r],
                    titles[r]
                );
            }
        }
    }
    Ok(())
}
