//! Item index files (`items.safetensors`): the item matrix `[num_items, hidden]` as one F32
//! tensor [`ITEM_EMBEDDINGS_TENSOR`], with the item keys (row order, [`ITEM_KEYS_METADATA`]) and
//! optionally their texts ([`ITEM_TEXTS_METADATA`]) as JSON in the safetensors metadata, and
//! `{"format": "pt"}` so that PyTorch / HF tools read the file. An index is checked against a
//! dataset by key, not by count; with texts, a model directory can serve by itself
//! ([`crate::Recommender::from_dir`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use recformer_data::ItemMeta;
use safetensors::tensor::{Dtype, TensorView};

use crate::checkpoint::{read_f32_tensor, st_err, write_atomic};
use crate::error::{Error, Result};

/// Name of the tensor holding the item matrix in item index files.
pub const ITEM_EMBEDDINGS_TENSOR: &str = "item_embeddings";
/// Metadata field with the item keys of the rows, as a JSON array of strings.
pub const ITEM_KEYS_METADATA: &str = "item_keys";
/// Metadata field with the item texts of the rows, as a JSON array of [`ItemMeta`].
pub const ITEM_TEXTS_METADATA: &str = "item_texts";

/// The keys (and optionally texts) of an item matrix's rows, for [`save_item_index`].
#[derive(Debug, Clone, Copy)]
pub struct ItemRows<'a> {
    /// Key of each row.
    pub keys: &'a [String],
    /// Text of each row, when it should be stored.
    pub texts: Option<&'a [ItemMeta]>,
}

/// An item matrix read from a file, with the keys of its rows when the file has them (files
/// written before keys were stored have none).
#[derive(Debug, Clone)]
pub struct ItemIndex<B: Backend> {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[num_items, hidden]`, one row per item.
    pub vectors: Tensor<B, 2>,
    /// The key of each row, when stored.
    pub keys: Option<Vec<String>>,
    /// The text of each row, when stored.
    pub texts: Option<Vec<ItemMeta>>,
}

impl<B: Backend> ItemIndex<B> {
    /// Rows of the matrix.
    pub fn len(&self) -> usize {
        self.vectors.dims()[0]
    }

    /// Whether the matrix has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that the rows are the items `expected` in that order: by key when the file stores
    /// keys, by count otherwise.
    ///
    /// # Errors
    /// [`Error::ItemIndex`] naming the file and the first row that differs.
    pub fn check_keys(&self, expected: &[String]) -> Result<()> {
        let err = |reason: String| Error::ItemIndex {
            path: self.path.clone(),
            reason,
        };
        match &self.keys {
            Some(keys) => {
                if keys.len() != expected.len() {
                    return Err(err(format!(
                        "the index has {} items but the catalogue has {}; it was made for another dataset",
                        keys.len(),
                        expected.len()
                    )));
                }
                if let Some((row, (a, b))) = keys
                    .iter()
                    .zip(expected)
                    .enumerate()
                    .find(|(_, (a, b))| a != b)
                {
                    return Err(err(format!(
                        "row {row} is item `{a}` but the catalogue's row {row} is `{b}`; the index was made for another dataset"
                    )));
                }
            }
            None => {
                if self.len() != expected.len() {
                    return Err(err(format!(
                        "the index has {} rows but the catalogue has {} items",
                        self.len(),
                        expected.len()
                    )));
                }
                log::warn!(
                    "{}: no item keys stored (an older file); checked by row count only",
                    self.path.display()
                );
            }
        }
        Ok(())
    }
}

/// Saves an item matrix `[N, H]` (f32) atomically, with the keys (and texts) of its rows when
/// given.
///
/// # Errors
/// I/O errors; keys or texts whose count is not `N`.
pub fn save_item_index<B: Backend>(
    path: &Path,
    items: &Tensor<B, 2>,
    rows: Option<ItemRows<'_>>,
) -> Result<()> {
    let [n, h] = items.dims();
    let mut metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    if let Some(rows) = rows {
        let texts = rows.texts.map(|t| t.len()).unwrap_or(n);
        if rows.keys.len() != n || texts != n {
            return Err(Error::ItemIndex {
                path: path.to_path_buf(),
                reason: format!("{} keys and {texts} texts for {n} rows", rows.keys.len()),
            });
        }
        let json = serde_json::to_string(rows.keys).map_err(|e| Error::json(path, e))?;
        metadata.insert(ITEM_KEYS_METADATA.to_string(), json);
        if let Some(texts) = rows.texts {
            let json = serde_json::to_string(texts).map_err(|e| Error::json(path, e))?;
            metadata.insert(ITEM_TEXTS_METADATA.to_string(), json);
        }
    }
    let values: Vec<f32> = items
        .to_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| Error::InvalidData(format!("item matrix: {e:?}")))?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![n, h], &bytes).map_err(st_err(path))?;
    let out = safetensors::serialize([(ITEM_EMBEDDINGS_TENSOR, view)], Some(metadata))
        .map_err(st_err(path))?;
    write_atomic(path, &out)
}

/// Saves an item matrix without keys (resume checkpoints inside a run).
pub fn save_item_matrix<B: Backend>(path: &Path, items: &Tensor<B, 2>) -> Result<()> {
    save_item_index(path, items, None)
}

/// Loads an item index saved by [`save_item_index`] (or an older keyless file).
///
/// # Errors
/// I/O and safetensors errors, a missing or non-F32 or non-2-D [`ITEM_EMBEDDINGS_TENSOR`], keys
/// that are not a JSON array of strings or whose count differs from the rows.
pub fn load_item_index<B: Backend>(path: &Path, device: &B::Device) -> Result<ItemIndex<B>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(st_err(path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(st_err(path))?;
    let view = st.tensor(ITEM_EMBEDDINGS_TENSOR).map_err(st_err(path))?;
    let bad = |reason: String| Error::ItemIndex {
        path: path.to_path_buf(),
        reason,
    };
    let shape = view.shape().to_vec();
    if shape.len() != 2 {
        return Err(bad(format!(
            "`{ITEM_EMBEDDINGS_TENSOR}` must be 2-D, has shape {shape:?}"
        )));
    }
    let field = |name: &str| meta.metadata().as_ref().and_then(|m| m.get(name)).cloned();
    let keys: Option<Vec<String>> =
        parse_rows(field(ITEM_KEYS_METADATA), ITEM_KEYS_METADATA, shape[0]).map_err(bad)?;
    let texts: Option<Vec<ItemMeta>> =
        parse_rows(field(ITEM_TEXTS_METADATA), ITEM_TEXTS_METADATA, shape[0]).map_err(bad)?;
    let values = read_f32_tensor(path, &view)?;
    Ok(ItemIndex {
        path: path.to_path_buf(),
        vectors: Tensor::from_data(TensorData::new(values, [shape[0], shape[1]]), device),
        keys,
        texts,
    })
}

/// One JSON array of `rows` values from the metadata field `name`, if present.
fn parse_rows<T: serde::de::DeserializeOwned>(
    json: Option<String>,
    name: &str,
    rows: usize,
) -> std::result::Result<Option<Vec<T>>, String> {
    let Some(json) = json else { return Ok(None) };
    let values: Vec<T> = serde_json::from_str(&json).map_err(|e| {
        format!("metadata `{name}` is not a JSON array of the expected values: {e}")
    })?;
    if values.len() != rows {
        return Err(format!(
            "metadata `{name}` has {} values for {rows} rows",
            values.len()
        ));
    }
    Ok(Some(values))
}

/// Loads the matrix of an item index file (keys ignored).
pub fn load_item_matrix<B: Backend>(path: &Path, device: &B::Device) -> Result<Tensor<B, 2>> {
    Ok(load_item_index(path, device)?.vectors)
}
