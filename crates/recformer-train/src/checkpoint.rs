//! Atomic checkpoint files: burn records (model / optimizer state), pending gradients as
//! safetensors, JSON documents (item matrices: [`crate::item_index`]).
//!
//! Every save writes `<name>.tmp-<pid>` next to the target, syncs it and renames it over the target,
//! so a killed run never leaves a half-written file under the final name.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

pub use crate::item_index::{
    load_item_index, load_item_matrix, save_item_index, save_item_matrix, ItemIndex, ItemRows,
    ITEM_EMBEDDINGS_TENSOR,
};

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".to_string());
    let tmp: PathBuf = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::json(path, e))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON document.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::json(path, e))
}

/// Saves a burn record (module or optimizer state, parameter ids included) atomically as
/// named MessagePack with full precision.
pub fn save_record<B: Backend, R: Record<B>>(path: &Path, record: R) -> Result<()> {
    let bytes = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(record, ())
        .map_err(|source| Error::Record {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomic(path, &bytes)
}

/// Starts checkpoint number `counter + 1` named `{prefix}-{NNNNN}`: a fresh directory in
/// `run` holding the model's record. Increments `counter`; returns the name and the directory,
/// to which the caller adds the rest of the checkpoint.
pub fn start_model_checkpoint<B: Backend, M: burn::module::Module<B>>(
    run: &crate::run_dir::RunDir,
    counter: &mut usize,
    prefix: &str,
    model: &M,
) -> Result<(String, PathBuf)> {
    *counter += 1;
    let name = format!("{prefix}-{:05}", *counter);
    let dir = run.fresh_subdir(&name)?;
    save_weights(&dir, model)?;
    Ok((name, dir))
}

/// Saves `model`'s weights as `model.mpk` in the checkpoint directory `dir`.
pub fn save_weights<B: Backend, M: burn::module::Module<B>>(dir: &Path, model: &M) -> Result<()> {
    save_record::<B, _>(
        &dir.join(crate::run_dir::MODEL_RECORD_FILE),
        model.clone().into_record(),
    )
}

/// Checks that there is one row of item tokens per item.
pub fn check_item_rows(token_rows: usize, num_items: usize) -> Result<()> {
    if token_rows == num_items {
        Ok(())
    } else {
        Err(Error::InvalidData(format!(
            "{token_rows} item token rows for {num_items} items"
        )))
    }
}

/// Loads a burn record written by [`save_record`].
pub fn load_record<B: Backend, R: Record<B>>(path: &Path, device: &B::Device) -> Result<R> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, device)
        .map_err(|source| Error::Record {
            path: path.to_path_buf(),
            source,
        })
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn st_err(path: &Path) -> impl Fn(safetensors::SafeTensorError) -> Error + '_ {
    move |source| Error::Safetensors {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn read_f32_tensor(path: &Path, view: &TensorView<'_>) -> Result<Vec<f32>> {
    if view.dtype() != Dtype::F32 {
        return Err(Error::InvalidData(format!(
            "{}: expected an F32 tensor, found {:?}",
            path.display(),
            view.dtype()
        )));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

struct CollectGrads<'a> {
    grads: &'a GradientsParams,
    out: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let shape = g.dims().to_vec();
            let values = g
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32 gradient data");
            self.out.push((param.id.val().to_string(), shape, values));
        }
    }
}

/// Saves accumulated (not yet applied) gradients, keyed by parameter id, atomically.
pub fn save_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    path: &Path,
    module: &M,
    grads: &GradientsParams,
) -> Result<()> {
    let mut collect = CollectGrads {
        grads,
        out: Vec::new(),
    };
    module.visit(&mut collect);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = collect
        .out
        .into_iter()
        .map(|(name, shape, values)| (name, shape, f32_bytes(&values)))
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, b)| {
            TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st_err(path))?;
    let out = safetensors::serialize(views, None).map_err(st_err(path))?;
    write_atomic(path, &out)
}

struct RestoreGrads<'a, B: Backend> {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    grads: &'a mut GradientsParams,
    device: B::Device,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for RestoreGrads<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some((shape, values)) = self.tensors.remove(&param.id.val().to_string()) {
            let t = Tensor::<B::InnerBackend, D>::from_data(
                TensorData::new(values, shape),
                &self.device,
            );
            self.grads.register::<B::InnerBackend, D>(param.id, t);
        }
    }
}

/// Loads gradients saved by [`save_gradients`] for the parameters of `module` (matched by id).
///
/// Fails if the file holds gradients for parameters `module` does not have.
pub fn load_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
    path: &Path,
    module: &M,
    device: &B::Device,
) -> Result<GradientsParams> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(st_err(path))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let values = read_f32_tensor(path, &view)?;
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    let mut grads = GradientsParams::new();
    let mut restore = RestoreGrads::<B::InnerBackend> {
        tensors,
        grads: &mut grads,
        device: device.clone(),
    };
    module.visit(&mut restore);
    if !restore.tensors.is_empty() {
        let mut left: Vec<_> = restore.tensors.keys().cloned().collect();
        left.sort();
        return Err(Error::InvalidData(format!(
            "{}: gradients for unknown parameter ids {left:?}",
            path.display()
        )));
    }
    Ok(grads)
}

/// Parameter id helper for tests and logs.
pub fn param_id_string(id: ParamId) -> String {
    id.val().to_string()
}
