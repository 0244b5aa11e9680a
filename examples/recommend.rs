//! Recommend for a history with the library API ([`recformer::Recommender`]), including a
//! cold-start item that exists only as text.
//!
//! ```text
//! cargo run --release --example recommend -- [MODEL_DIR]
//! ```
//! With a trained model directory (`recformer finetune` writes `RUN/model`, with its item index)
//! the recommendations are real; without arguments a random small model on a generated catalogue
//! shows the API (its scores are meaningless).

use anyhow::Result;
use recformer::data::{FinetuneDataset, ItemMeta, RecformerTokenizer};
use recformer::model::backend::Cpu;
use recformer::model::RecformerConfig;
use recformer::{ModelSpec, Recommender};
use recformer_cli::synth::{generate, SynthConfig};

fn main() -> Result<()> {
    let device: burn::tensor::Device<Cpu> = Default::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rec = match args.first() {
        // A model directory serves by itself: weights, tokenizer and the item index.
        Some(dir) => Recommender::<Cpu>::from_dir(dir.as_ref(), &device)?,
        None => {
            let tmp = tempfile::tempdir()?;
            let dir = tmp.path().join("data");
            generate(&SynthConfig {
                num_items: 100,
                num_users: 20,
                ..SynthConfig::default()
            })
            .write_finetune_layout(&dir)?;
            let ds = FinetuneDataset::load(&dir)?;
            let texts = ds
                .items
                .iter()
                .flat_map(|i| i.attrs.iter().map(|(_, v)| v.clone()));
            let tokenizer = RecformerTokenizer::train_wordpiece(texts, 500, true)?;
            let spec = ModelSpec::fit(RecformerConfig::tiny(), tokenizer)?;
            let model = spec.config().init_model::<Cpu>(&device);
            let catalogue: Vec<(String, ItemMeta)> =
                ds.item_keys.into_iter().zip(ds.items).collect();
            Recommender::from_catalogue(spec, model, &catalogue, &device)?
        }
    };
    let before = rec.encoded_items();
    // A brand-new item, never seen in training: RecFormer only needs its text, and only this
    // item is encoded.
    rec.add_items(&[(
        "NEW-CALIPER".to_string(),
        ItemMeta::new(
            "Acmelab Precision digital caliper ACM-999",
            "Acmelab",
            "Industrial & Scientific Measuring Tools",
        ),
    )])?;
    assert_eq!(rec.encoded_items(), before + 1);

    let history: Vec<&str> = rec.keys()[..3].iter().map(String::as_str).collect();
    let title = |key: &str| {
        rec.item(key)
            .map(|m| m.title().to_string())
            .unwrap_or_default()
    };
    println!("history (oldest first):");
    for key in &history {
        println!("    {}", title(key));
    }
    println!("top 5 (history excluded):");
    for r in rec.recommend(&history, 5, true)? {
        let new = if r.key == "NEW-CALIPER" {
            " (cold-start)"
        } else {
            ""
        };
        println!("  {:>9.5}  {}{new}", r.score, title(&r.key));
    }
    Ok(())
}
