//! `recformer prepare finetune|pretrain`: raw Amazon 2018 files -> the official layouts;
//! `recformer prepare corpus`: an in-domain pretraining corpus from a finetuning dataset.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recformer_data::prepare::{
    prepare_finetune_with_progress, prepare_pretrain_with_progress, PrepareFinetuneOptions,
    PrepareReport, ProgressEvent,
};

use super::PrepareCommand;

/// One byte-progress bar per input file.
struct FileBars {
    bars: RefCell<HashMap<(PathBuf, &'static str), ProgressBar>>,
}

impl FileBars {
    fn new() -> Self {
        Self {
            bars: RefCell::new(HashMap::new()),
        }
    }

    fn observe(&self, ev: &ProgressEvent<'_>) {
        let mut bars = self.bars.borrow_mut();
        let key = (ev.file.to_path_buf(), ev.stage);
        let bar = bars.entry(key).or_insert_with(|| {
            let b =
                ProgressBar::with_draw_target(Some(ev.total_bytes), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            let name = ev
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            b.set_message(format!("{} ({})", name, ev.stage));
            b
        });
        bar.set_position(ev.bytes_read);
        if ev.finished {
            bar.finish();
        }
    }
}

pub fn run(cmd: PrepareCommand) -> Result<()> {
    let bars = FileBars::new();
    let observe = |ev: &ProgressEvent<'_>| bars.observe(ev);
    let report = match cmd {
        PrepareCommand::Finetune {
            reviews,
            meta,
            out,
            sample_users,
            seed,
        } => {
            let opts = PrepareFinetuneOptions { sample_users, seed };
            prepare_finetune_with_progress(&reviews, &meta, &out, &opts, &observe)
                .with_context(|| format!("preparing finetuning data into {}", out.display()))?
        }
        PrepareCommand::Corpus {
            data,
            out,
            dev_every,
        } => {
            let c = recformer_data::prepare_in_domain_corpus(&data, &out, dev_every)
                .with_context(|| format!("writing an in-domain corpus into {}", out.display()))?;
            println!(
                "{}: {} train / {} dev sequences (every {dev_every}th user held out), {} items",
                out.display(),
                c.train,
                c.dev,
                c.items
            );
            return Ok(());
        }
        PrepareCommand::Pretrain {
            reviews,
            meta,
            dev_reviews,
            dev_meta,
            out,
        } => {
            prepare_pretrain_with_progress(&reviews, &meta, &dev_reviews, &dev_meta, &out, &observe)
                .with_context(|| format!("preparing pretraining data into {}", out.display()))?
        }
    };
    print_report(&report);
    Ok(())
}

/// Prints the counts and every kind of skipped or repaired record, with example locations.
pub fn print_report(r: &PrepareReport) {
    println!("users:        {}", r.users);
    println!("items:        {}", r.items);
    println!("interactions: {}", r.interactions);
    if r.dev_sequences > 0 {
        println!("dev sequences: {}", r.dev_sequences);
    }
    println!("items with metadata:         {}", r.meta_items);
    println!("reviews without metadata:    {}", r.reviews_without_meta);
    if r.users_too_short > 0 || r.users_sampled_out > 0 {
        println!("users with <= 3 interactions: {}", r.users_too_short);
        println!("users left out by sampling:   {}", r.users_sampled_out);
    }
    for f in &r.files {
        println!("read {} lines from {}", f.lines, f.file.display());
    }
    println!("skipped records: {}", r.skipped_records());
    for s in &r.issues {
        let examples: Vec<String> = s.examples.iter().map(|e| e.to_string()).collect();
        println!(
            "  {:>8} x {} (e.g. {})",
            s.count,
            s.issue,
            examples.join(", ")
        );
    }
}
