//! Saving our checkpoints as f32 safetensors in HF key naming (what [`crate::load_checkpoint`]
//! and the official PyTorch code read).

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot};

use crate::error::{Error, Result};
use crate::heads::LongformerLMHead;
use crate::keys::hf_key_of_param;
use crate::loader::ITEM_EMBEDDING;
use crate::model::RecformerModel;

fn collect_hf<B: Backend, M: ModuleSnapshot<B>>(
    module: &M,
    key_of: impl Fn(&str) -> String,
    out: &mut Vec<(String, TensorData)>,
    path: &Path,
) -> Result<()> {
    for snapshot in module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false) {
        let key = key_of(&snapshot.full_path());
        let data = snapshot.to_data().map_err(|e| Error::BadTensor {
            path: path.to_path_buf(),
            key: key.clone(),
            reason: format!("{e:?}"),
        })?;
        out.push((key, data.convert::<f32>()));
    }
    Ok(())
}

/// Saves our checkpoints as f32 safetensors in HF key naming, so that [`load_checkpoint`](crate::load_checkpoint) (and the
/// official PyTorch code) can read them. Style: `Model` when only `model` is given, else
/// `longformer.*` plus `lm_head.*` (with the tied `lm_head.decoder.bias` duplicate, as PyTorch writes
/// it) and/or `item_embedding.weight`.
pub fn save_safetensors<B: Backend>(
    model: &RecformerModel<B>,
    lm_head: Option<&LongformerLMHead<B>>,
    item_embedding: Option<&Tensor<B, 2>>,
    path: &Path,
) -> Result<()> {
    let prefix = if lm_head.is_some() || item_embedding.is_some() {
        "longformer."
    } else {
        ""
    };
    let mut tensors: Vec<(String, TensorData)> = Vec::new();
    collect_hf(
        model,
        |p| format!("{prefix}{}", hf_key_of_param(p)),
        &mut tensors,
        path,
    )?;
    if let Some(head) = lm_head {
        collect_hf(
            head,
            |p| format!("lm_head.{}", hf_key_of_param(p)),
            &mut tensors,
            path,
        )?;
        tensors.push((
            "lm_head.decoder.bias".into(),
            head.bias.val().into_data().convert::<f32>(),
        ));
    }
    if let Some(items) = item_embedding {
        tensors.push((ITEM_EMBEDDING.into(), items.to_data().convert::<f32>()));
    }
    let mut views = Vec::with_capacity(tensors.len());
    for (key, data) in &tensors {
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F32,
            data.shape.iter().copied().collect(),
            data.as_bytes(),
        )
        .map_err(|source| Error::SafetensorsWrite {
            path: path.to_path_buf(),
            source,
        })?;
        views.push((key.clone(), view));
    }
    // `{"format": "pt"}`: what PyTorch / HF tools expect of a safetensors checkpoint.
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), path).map_err(|source| {
        Error::SafetensorsWrite {
            path: path.to_path_buf(),
            source,
        }
    })?;
    log::info!("saved {} tensors to {}", tensors.len(), path.display());
    Ok(())
}
