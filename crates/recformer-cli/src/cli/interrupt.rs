//! Ctrl-C during training: the first press asks the loop to stop at its next checkpoint (the
//! end of a finetuning epoch, the next pretraining micro-batch); the command then exits non-zero
//! and the same command resumes. A second press aborts at once.

use std::sync::atomic::{AtomicBool, Ordering};

use recformer_train::RunControl;

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; later calls keep the first).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("aborted");
            std::process::exit(130);
        }
        eprintln!(
            "stopping at the next checkpoint (Ctrl-C again to abort); the same command resumes"
        );
    });
}

/// The run control of a CLI training command: no epoch limit, stops on Ctrl-C.
pub fn control() -> RunControl<'static> {
    RunControl {
        stop: Some(&STOP),
        ..RunControl::default()
    }
}
