//! `recformer init`: start from a pretrained language model (HF BERT / RoBERTa / Longformer).

use std::path::PathBuf;

use anyhow::{Context, Result};
use recformer_model::pretrained::FromPretrainedConfig;
use recformer_train::ModelDir;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// HF model directory: config.json (model_type bert, roberta or longformer), model.safetensors
    /// or pytorch_model.bin, and tokenizer.json, vocab.json + merges.txt, or vocab.txt.
    #[arg(long)]
    pub from: PathBuf,
    /// Output model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Full local attention window of every layer (even).
    #[arg(long, default_value_t = 64)]
    pub attention_window: usize,
    /// Maximum tokens per sequence (default: the source's positions, at most 1024).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Item position rows (`<s>` + items).
    #[arg(long, default_value_t = 51)]
    pub max_item_embeddings: usize,
    /// Attributes per item.
    #[arg(long, default_value_t = 3)]
    pub max_attr_num: usize,
    /// Tokens per attribute (key + value).
    #[arg(long, default_value_t = 32)]
    pub max_attr_length: usize,
    /// Sequence vector: cls (first token, official) or avg (mean of real tokens).
    #[arg(long, default_value = "cls", value_parser = ["cls", "avg"])]
    pub pooler: String,
    /// Print only the summary line of the conversion report.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: InitArgs) -> Result<()> {
    let options = FromPretrainedConfig {
        attention_window: a.attention_window,
        max_token_num: a.max_tokens,
        max_item_embeddings: a.max_item_embeddings,
        max_attr_num: a.max_attr_num,
        max_attr_length: a.max_attr_length,
        pooler_type: a.pooler.clone(),
    };
    let (md, report) = ModelDir::from_pretrained(&a.from, &a.out, &options)
        .with_context(|| format!("converting {}", a.from.display()))?;
    let text = report.to_string();
    if a.quiet {
        eprint!("{}", text.lines().next().unwrap_or_default());
        eprintln!();
    } else {
        eprint!("{text}");
    }
    if !report.source_had_mlm_head() {
        eprintln!(
            "note: the source has no MLM head; a new one was made (decoder = a copy of the word embeddings)"
        );
    }
    let c = &md.config();
    println!(
        "{}: {} layers x {}, {} heads, vocab {}, window {}, {} tokens, pooler {} (report: {})",
        md.dir.display(),
        c.num_hidden_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.vocab_size,
        c.attention_window[0],
        c.max_token_num,
        c.pooler_type,
        md.dir
            .join(recformer_train::model_dir::REPORT_FILE)
            .display()
    );
    Ok(())
}
