//! Recommend for a history with the library API, including a cold-start item that exists only
//! as text.
//!
//! ```text
//! cargo run --release --example recommend -- [MODEL_DIR DATASET_DIR]
//! ```
//! With a trained model directory (`recformer finetune` writes `RUN/model`) and its dataset the
//! recommendations are real; without arguments a random small model on a generated catalogue
//! shows the API (its scores are meaningless).

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Tensor;
use recformer::data::{FinetuneDataset, ItemMeta, RecformerTokenizer};
use recformer::demo::synth::{generate, SynthConfig};
use recformer::model::backend::Cpu;
use recformer::model::{l2_normalize, RecformerConfig, RecformerModel};
use recformer::model_dir::data_config;
use recformer::train::{encode_all_items, InputBuilder, NoProgress};
use recformer::ModelDir;

fn main() -> Result<()> {
    let device: burn::tensor::Device<Cpu> = Default::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = tempfile::tempdir()?;
    let (model, config, tokenizer, data): (
        RecformerModel<Cpu>,
        RecformerConfig,
        RecformerTokenizer,
        PathBuf,
    ) = if args.len() == 2 {
        let md = ModelDir::open(args[0].as_ref())?;
        let model = md.load::<Cpu>(&device)?.model;
        (model, md.config, md.tokenizer, PathBuf::from(&args[1]))
    } else {
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
        let mut config = RecformerConfig::tiny();
        config.vocab_size = tokenizer.vocab_size();
        config.pad_token_id = tokenizer.pad_token_id() as usize;
        config.max_position_embeddings = config.max_token_num + config.pad_token_id + 2;
        (config.init_model::<Cpu>(&device), config, tokenizer, dir)
    };
    let dataset = FinetuneDataset::load(&data)?;
    let dcfg = data_config(&config);
    let mut items = dataset.items.clone();
    // A brand-new item, never seen in training: RecFormer only needs its text.
    items.push(ItemMeta::new(
        "Acmelab Precision digital caliper ACM-999",
        "Acmelab",
        "Industrial & Scientific Measuring Tools",
    ));
    let tokens = tokenizer.encode_catalogue(&items, &dcfg)?;
    let builder = InputBuilder::new(&tokenizer, dcfg);
    let matrix = l2_normalize(encode_all_items(
        &model,
        &tokens,
        &builder,
        64,
        &device,
        &NoProgress,
    ));

    let history = [0usize, 1, 2];
    let (_, input) = builder.batch::<Cpu>(&[&history[..]], &tokens, &device);
    let user: Tensor<Cpu, 2> = l2_normalize(model.forward(input).pooler_output);
    let scores: Vec<f32> = user
        .matmul(matrix.transpose())
        .div_scalar(config.temp)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut order: Vec<usize> = (0..scores.len()).filter(|i| !history.contains(i)).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    println!("history:");
    for &h in &history {
        println!("    {}", items[h].title());
    }
    println!("top 5:");
    for &i in order.iter().take(5) {
        let new = if i == items.len() - 1 {
            " (cold-start)"
        } else {
            ""
        };
        println!("  {:>9.5}  {}{new}", scores[i], items[i].title());
    }
    Ok(())
}
