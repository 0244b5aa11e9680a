//! The library's progress observer on stderr: `indicatif` bars on a terminal, plain lines
//! otherwise (a log file or a pipe gets every message, and a line per task with its rate), or
//! nothing when quiet.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recformer_train::{MetricsEvent, Progress};

/// Progress bars with ETA on stderr; evaluation summaries are printed above the bars.
pub struct Bars {
    quiet: bool,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    plain: Mutex<Option<PlainTask>>,
}

/// A task reported as plain lines (stderr is not a terminal).
struct PlainTask {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
}

/// How often a plain-line task reports its position.
const PLAIN_EVERY: Duration = Duration::from_secs(60);

impl PlainTask {
    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        format!(
            "{}: {}/{} in {secs:.0} s ({:.1}/s)",
            self.label,
            self.done,
            self.total,
            self.done as f64 / secs.max(1e-9)
        )
    }
}

impl Bars {
    /// Bars on stderr (plain lines when it is not a terminal), or nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            plain: Mutex::new(None),
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
        if !self.terminal {
            let now = Instant::now();
            *self.plain.lock().expect("progress lock") = Some(PlainTask {
                label: label.to_string(),
                total,
                done: 0,
                started: now,
                last_line: now,
            });
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
        if let Some(t) = self.plain.lock().expect("progress lock").as_mut() {
            t.done += n;
            if t.last_line.elapsed() >= PLAIN_EVERY {
                t.last_line = Instant::now();
                eprintln!("{}", t.line());
            }
        }
        if let Some(b) = self.bar.lock().expect("progress lock").as_ref() {
            b.inc(n);
        }
    }

    fn on_finish(&self) {
        if let Some(t) = self.plain.lock().expect("progress lock").take() {
            eprintln!("{}", t.line());
        }
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
