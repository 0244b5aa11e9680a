//! `indicatif` implementation of the library's progress observer (stderr), and a quiet one.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recformer_train::{MetricsEvent, Progress};

/// Progress bars with ETA on stderr; evaluation summaries are printed above the bars.
pub struct Bars {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars on stderr, or nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: Mutex::new(None),
        }
    }

    /// A one-line message on stderr (suppressed when quiet).
    pub fn say(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match self.bar.lock().expect("progress lock").as_ref() {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}

impl Progress for Bars {
    fn on_start(&self, label: &str, total: u64) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn on_advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("progress lock").as_ref() {
            b.inc(n);
        }
    }

    fn on_finish(&self) {
        if let Some(b) = self.bar.lock().expect("progress lock").take() {
            b.finish_and_clear();
        }
    }

    fn on_event(&self, event: &MetricsEvent) {
        let mut line = match event.kind.as_str() {
            "epoch" => format!(
                "[{}] epoch {} done (step {})",
                event.stage, event.epoch, event.step
            ),
            kind => format!(
                "[{}] {kind} after epoch {} (step {})",
                event.stage, event.epoch, event.step
            ),
        };
        if let Some(l) = event.loss {
            line.push_str(&format!(" loss {l:.4}"));
        }
        if let Some(a) = event.accuracy {
            line.push_str(&format!(" acc {a:.4}"));
        }
        if let Some(m) = &event.metrics {
            line.push_str(&format!(
                " {} NDCG@10 {:.4} Recall@10 {:.4} MRR {:.4}",
                event.split.as_deref().unwrap_or(""),
                m.ndcg_10,
                m.recall_10,
                m.mrr
            ));
        }
        if event.best == Some(true) {
            line.push_str(" (best)");
        }
        self.say(&line);
    }
}
