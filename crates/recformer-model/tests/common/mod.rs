//! Shared helpers for the integration tests: fixture paths, fixture cases, tolerances.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use burn_store::{ModuleStore, SafetensorsStore};
use recformer_model::{RecformerConfig, RecformerInput};

/// `tests/fixtures/<name>` (or `$RECFORMER_MODEL_FIXTURES/<name>`, for a test binary copied to
/// another machine).
pub fn fixture(name: &str) -> PathBuf {
    match std::env::var_os("RECFORMER_MODEL_FIXTURES") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("fixtures")
            .join(name),
    }
}

/// The config of the fixtures.
pub fn fixture_config() -> RecformerConfig {
    RecformerConfig::from_json_file(fixture("config.json")).expect("fixture config")
}

/// All tensors of a safetensors fixture, as `TensorData`.
pub fn read_tensors(name: &str) -> BTreeMap<String, TensorData> {
    let mut store = SafetensorsStore::from_file(fixture(name));
    store
        .get_all_snapshots()
        .expect("readable fixture")
        .iter()
        .map(|(k, s)| (k.clone(), s.to_data().expect("tensor data")))
        .collect()
}

/// One PyTorch input case with its expected outputs.
pub struct Case {
    /// Case name.
    pub name: &'static str,
    /// All tensors of the case file.
    pub tensors: BTreeMap<String, TensorData>,
}

/// Names of the input cases written by `scripts/gen_fixtures.py`.
pub const CASES: [&str; 3] = ["padded", "exact", "items"];

impl Case {
    /// Loads `case_<name>.safetensors`.
    pub fn load(name: &'static str) -> Self {
        Self {
            name,
            tensors: read_tensors(&format!("case_{name}.safetensors")),
        }
    }

    fn int<B: Backend>(&self, key: &str, device: &B::Device) -> Tensor<B, 2, Int> {
        let data = self.tensors[key].clone().convert::<i64>();
        Tensor::<B, 2, Int>::from_data(data, device)
    }

    /// The model input of the case.
    pub fn input<B: Backend>(&self, device: &B::Device) -> RecformerInput<B> {
        RecformerInput::new(
            self.int("input_ids", device),
            self.int("attention_mask", device),
            self.int("token_type_ids", device),
            self.int("item_position_ids", device),
            self.int("global_attention_mask", device),
        )
    }

    /// An expected float tensor.
    pub fn expected(&self, key: &str) -> TensorData {
        self.tensors[key].clone().convert::<f32>()
    }
}

/// Asserts `|a - e| <= rtol * |e| + atol` element-wise; reports the worst element.
pub fn assert_close(actual: TensorData, expected: TensorData, rtol: f32, atol: f32, what: &str) {
    assert_eq!(actual.shape, expected.shape, "{what}: shape");
    let a: Vec<f32> = actual.convert::<f32>().iter::<f32>().collect();
    let e: Vec<f32> = expected.convert::<f32>().iter::<f32>().collect();
    let mut worst = (0usize, 0.0f32);
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        assert!(x.is_finite(), "{what}: non-finite value at {i}");
        let excess = (x - y).abs() - (rtol * y.abs() + atol);
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    assert!(
        worst.1 <= 0.0,
        "{what}: element {} differs: actual {} expected {} (rtol {rtol}, atol {atol})",
        worst.0,
        a[worst.0],
        e[worst.0]
    );
}

/// Relative tolerance of the PyTorch parity tests (f32).
pub const RTOL: f32 = 1e-4;
/// Absolute floor of the PyTorch parity tests (for values near zero).
pub const ATOL: f32 = 1e-5;

/// Largest absolute and relative (to `max |e|`) element difference, for reports.
pub fn max_diff(actual: &TensorData, expected: &TensorData) -> (f32, f32) {
    let a: Vec<f32> = actual.clone().convert::<f32>().iter::<f32>().collect();
    let e: Vec<f32> = expected.clone().convert::<f32>().iter::<f32>().collect();
    let abs = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    let scale = e
        .iter()
        .map(|y| y.abs())
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    (abs, abs / scale)
}

/// The tiny preset with `layers` layers of attention window `window`, 80 positions, 64 tokens per
/// item and large random weights (std 0.3), so that mistakes show.
pub fn tiny_config(window: usize, layers: usize) -> RecformerConfig {
    RecformerConfig {
        num_hidden_layers: layers,
        attention_window: vec![window; layers],
        max_position_embeddings: 80,
        max_token_num: 64,
        initializer_range: 0.3,
        ..RecformerConfig::tiny()
    }
}

/// RecFormer-shaped batch: `<s>` first (global), random tokens, right padding to the longest row.
pub fn batch_on<BB: Backend>(
    lengths: &[usize],
    config: &RecformerConfig,
    seed: u64,
) -> RecformerInput<BB> {
    let device = Default::default();
    let max_len = *lengths.iter().max().unwrap();
    let pad = config.pad_token_id as i64;
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let (mut ids, mut mask, mut types, mut items) = (vec![], vec![], vec![], vec![]);
    for &len in lengths {
        for t in 0..max_len {
            let real = t < len;
            ids.push(if t == 0 {
                0
            } else if real {
                3 + next(config.vocab_size as u64 - 3) as i64
            } else {
                pad
            });
            mask.push(real as i64);
            types.push(if t == 0 {
                0
            } else if real {
                1 + (t % 2) as i64
            } else {
                3
            });
            items.push(if t == 0 {
                0
            } else if real {
                1 + ((t - 1) / 4).min(4) as i64
            } else {
                5
            });
        }
    }
    let t = |v: Vec<i64>| {
        Tensor::<BB, 2, Int>::from_data(TensorData::new(v, [lengths.len(), max_len]), &device)
    };
    RecformerInput::with_cls_global(t(ids), t(mask), t(types), t(items))
}
