//! Shared CLI plumbing: backend dispatch, config overrides, dataset + catalogue loading.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use recformer_data::{FinetuneDataset, ItemTokens, RecformerDataConfig, RecformerTokenizer};
use recformer_model::backend::DeviceKind;
use recformer_model::{Precision, RecformerConfig};
use serde::{de::DeserializeOwned, Serialize};

/// Parses `--device` (`cpu`, `wgpu`, `cuda`), naming the cargo feature a missing backend needs.
pub fn parse_device(s: &str) -> Result<DeviceKind> {
    s.parse::<DeviceKind>()
        .map_err(|e| anyhow::anyhow!("--device {s}: {e}"))
}

/// An error unless the backend of `kind` computes in `precision` (`DeviceKind::supports`).
pub fn check_precision(kind: DeviceKind, precision: Precision) -> Result<()> {
    anyhow::ensure!(
        kind.supports(precision),
        "precision {} needs a backend with half-precision tensors (--device flex or cuda; \
         f16 also wgpu); --device {} does not compute in it",
        precision.name(),
        kind.name()
    );
    Ok(())
}

/// Runs `$body` with `$B` bound to the inference backend of `$kind` and `$dev` to its default device.
macro_rules! with_backend {
    ($kind:expr, $B:ident, $dev:ident, $body:block) => {{
        use recformer_model::backend::DeviceKind;
        match $kind {
            DeviceKind::Cpu => {
                type $B = recformer_model::backend::Cpu;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "flex")]
            DeviceKind::Flex => {
                type $B = recformer_model::backend::Flex;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "ndarray")]
            DeviceKind::NdArray => {
                type $B = recformer_model::backend::NdArray;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => {
                type $B = recformer_model::backend::Wgpu;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => {
                type $B = recformer_model::backend::Cuda;
                let $dev = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => anyhow::bail!("backend {other} is not compiled into this binary"),
        }
    }};
}

/// Like [`with_backend!`], with the autodiff (training) backend.
macro_rules! with_autodiff_backend {
    ($kind:expr, $B:ident, $dev:ident, $body:block) => {{
        use recformer_model::backend::DeviceKind;
        match $kind {
            DeviceKind::Cpu => {
                type $B = recformer_model::backend::CpuAutodiff;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "flex")]
            DeviceKind::Flex => {
                type $B = recformer_model::backend::FlexAutodiff;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "ndarray")]
            DeviceKind::NdArray => {
                type $B = recformer_model::backend::NdArrayAutodiff;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => {
                type $B = recformer_model::backend::WgpuAutodiff;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => {
                type $B = recformer_model::backend::CudaAutodiff;
                let $dev = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => anyhow::bail!("backend {other} is not compiled into this binary"),
        }
    }};
}

pub(crate) use {with_autodiff_backend, with_backend};

/// Loads a training config (TOML/JSON) or its defaults, then applies `--set field=value`
/// overrides (the value is parsed as JSON, else taken as a string). Unknown fields are errors.
pub fn load_config<T: Serialize + DeserializeOwned + Default>(
    file: Option<&Path>,
    load: impl Fn(&Path) -> std::result::Result<T, recformer_train::Error>,
    sets: &[String],
) -> Result<T> {
    let base = match file {
        Some(p) => load(p).with_context(|| format!("loading config {}", p.display()))?,
        None => T::default(),
    };
    apply_sets(base, sets)
}

/// Applies `field=value` overrides through the serde representation.
pub fn apply_sets<T: Serialize + DeserializeOwned>(value: T, sets: &[String]) -> Result<T> {
    if sets.is_empty() {
        return Ok(value);
    }
    let mut json = serde_json::to_value(&value)?;
    let obj = json.as_object_mut().context("config is not an object")?;
    for s in sets {
        let Some((key, raw)) = s.split_once('=') else {
            bail!("--set {s:?}: expected FIELD=VALUE");
        };
        let key = key.trim();
        if !obj.contains_key(key) {
            let known: Vec<&str> = obj.keys().map(String::as_str).collect();
            bail!("--set {key}: unknown field (known: {})", known.join(", "));
        }
        let v = serde_json::from_str(raw.trim())
            .unwrap_or_else(|_| serde_json::Value::String(raw.trim().to_string()));
        obj.insert(key.to_string(), v);
    }
    serde_json::from_value(json).context("applying --set overrides")
}

/// A finetuning dataset and its tokenised catalogue.
pub struct Catalogue {
    pub dataset: FinetuneDataset,
    pub tokens: Vec<ItemTokens>,
}

/// Loads the official finetuning layout and tokenises every item (in parallel).
pub fn load_catalogue(
    data: &Path,
    tokenizer: &RecformerTokenizer,
    cfg: &RecformerDataConfig,
    say: &dyn Fn(&str),
) -> Result<Catalogue> {
    let t0 = Instant::now();
    let dataset = FinetuneDataset::load(data)
        .with_context(|| format!("loading dataset {}", data.display()))?;
    let tokens = tokenizer
        .encode_catalogue(&dataset.items, cfg)
        .context("tokenising the catalogue")?;
    say(&format!(
        "dataset {}: {} users, {} items, tokenised in {:.1}s",
        data.display(),
        dataset.num_users(),
        dataset.num_items(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(Catalogue { dataset, tokens })
}

/// Model presets selectable with `--preset`.
pub fn preset(name: &str) -> Result<RecformerConfig> {
    Ok(recformer_model::presets::by_name(name)?)
}
