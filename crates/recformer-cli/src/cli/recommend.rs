//! `recformer recommend`: top-k items for a history, including cold-start items given as text.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use recformer_data::ItemMeta;
use recformer_train::{ModelDir, Recommender};
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
    /// Dataset in the official finetuning layout (its meta_data.json is the catalogue). Without
    /// it, the model directory's own item index (keys and texts, written by finetune and
    /// encode-items) is the catalogue.
    #[arg(long)]
    pub data: Option<PathBuf>,
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
    /// Also recommend items already in the history (they are left out by default).
    #[arg(long, conflicts_with = "exclude_history")]
    pub include_history: bool,
    /// Leave out items already in the history (the default; kept for scripts that pass it).
    #[arg(long, hide = true)]
    pub exclude_history: bool,
    /// Cold-start items not in the trained catalogue: JSON {"KEY": {"title": .., "brand": .., "category": ..}}.
    #[arg(long)]
    pub new_items: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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

/// The recommender of `--model` over the catalogue of `--data` (or the model directory's own
/// index when `--data` is not given).
fn recommender<B: Backend>(
    a: &RecommendArgs,
    device: &B::Device,
    bars: &Bars,
) -> Result<Recommender<B>> {
    let Some(data) = &a.data else {
        anyhow::ensure!(
            a.items.is_none(),
            "--items needs --data (the catalogue whose keys the index must match)"
        );
        return Recommender::from_dir(&a.model, device).with_context(|| {
            format!(
                "{}: without --data the model directory must hold its item index (keys and texts)",
                a.model.display()
            )
        });
    };
    let mut md = ModelDir::open(&a.model)?;
    if let Some(items) = &a.items {
        md.items = Some(items.clone());
    }
    let cat = load_catalogue(data, md.tokenizer(), &md.data_config(), &|m| bars.say(m))?;
    let loaded = md.load_without_mlm_head::<B>(device)?;
    let (items, _) = item_matrix(
        &md,
        loaded.item_embedding,
        &loaded.model,
        &cat.dataset.item_keys,
        &cat.tokens,
        false,
        device,
        bars,
    )?;
    let rec = Recommender::from_parts(
        md.spec,
        loaded.model,
        cat.dataset.item_keys,
        cat.dataset.items,
        items,
        device,
    )?;
    Ok(rec)
}

fn recommend<B: Backend>(a: &RecommendArgs, device: &B::Device) -> Result<()> {
    let bars = Bars::new(a.quiet);
    let mut rec = recommender::<B>(a, device, &bars)?;
    if let Some(path) = &a.new_items {
        let new = read_new_items(path)?;
        rec.add_items(&new)
            .with_context(|| format!("adding the cold-start items of {}", path.display()))?;
        bars.say(&format!(
            "added {} cold-start items from {}",
            new.len(),
            path.display()
        ));
    }
    let users: Vec<(String, Vec<String>)> = match &a.users {
        Some(p) => read_users(p)?,
        None => vec![("history".to_string(), a.history.clone())],
    };
    let histories: Vec<Vec<&str>> = users
        .iter()
        .map(|(_, h)| h.iter().map(|k| k.trim()).collect())
        .collect();
    for ((user, _), h) in users.iter().zip(&histories) {
        if let Some(k) = h.iter().find(|k| rec.row(k).is_none()) {
            bail!("user {user:?}: item {k:?} is neither in the catalogue nor in --new-items");
        }
    }
    let refs: Vec<&[&str]> = histories.iter().map(|h| h.as_slice()).collect();
    let exclude = !a.include_history;
    let results = rec.recommend_batch(&refs, a.k, exclude)?;
    let title = |key: &str| {
        rec.item(key)
            .map(|m| m.title().to_string())
            .unwrap_or_default()
    };
    if a.json {
        let out: Vec<_> = users
            .iter()
            .zip(&histories)
            .zip(&results)
            .map(|(((user, _), hist), recs)| {
                json!({
                    "user": user,
                    "history": hist.iter().map(|k| json!({"key": k, "title": title(k)})).collect::<Vec<_>>(),
                    "recommendations": recs.iter().map(|r| json!({"key": r.key, "title": title(&r.key), "score": r.score})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (((user, _), hist), recs) in users.iter().zip(&histories).zip(&results) {
            println!("{user}: history (oldest first)");
            for k in hist {
                println!("    {:<14} {}", k, title(k));
            }
            println!("  top {}:", recs.len());
            for (rank, r) in recs.iter().enumerate() {
                println!(
                    "  {:>3}. {:<14} {:>7.3}  {}",
                    rank + 1,
                    r.key,
                    r.score,
                    title(&r.key)
                );
            }
        }
    }
    Ok(())
}
