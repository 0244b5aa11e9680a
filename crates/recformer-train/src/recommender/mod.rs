//! [`Recommender`]: history → top-k items, the serving side of RecFormer.
//!
//! ```no_run
//! use recformer_train::Recommender;
//! use recformer_model::backend::Cpu;
//! use recformer_data::ItemMeta;
//!
//! let device = Default::default();
//! let mut rec = Recommender::<Cpu>::from_dir("runs/ft".as_ref(), &device)?;
//! // Cold start: a new item is encoded alone; the other rows are not touched.
//! rec.add_items(&[("NEW-1".into(), ItemMeta::new("Lab goggles", "Acme", "Safety"))])?;
//! for r in rec.recommend(&["B0001", "B0002"], 10, true)? {
//!     println!("{} {:.3}", r.key, r.score);
//! }
//! // Many users: histories encoded in batches, one matmul, on-device top-k.
//! let users: [&[&str]; 2] = [&["B0001"], &["B0003", "NEW-1"]];
//! let top = rec.recommend_batch(&users, 10, true)?;
//! assert_eq!(top.len(), 2);
//! rec.save_index("runs/ft/model/items.safetensors".as_ref())?;
//! # Ok::<(), recformer_train::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use recformer_data::{ItemMeta, ItemTokens};
use recformer_model::{l2_normalize, RecformerModel};

mod rank;

use crate::encode::encode_histories;
use crate::error::{Error, Result};
use crate::inputs::InputBuilder;
use crate::item_index::{save_item_index, ItemRows};
use crate::model_dir::{ModelDir, ModelSpec};
use crate::progress::NoProgress;

/// Sequences per forward pass when encoding items or histories. Default of
/// [`Recommender::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// One recommended item.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The item's key.
    pub key: String,
    /// The item's row in the index.
    pub row: usize,
    /// `cos(user, item) / temp`.
    pub score: f32,
}

/// A trained model with its item index (vectors, keys and texts): top-k recommendations for
/// histories given as item keys, and cold-start items added as text.
///
/// Scores are RecFormer's `cos(user, item) / temp` over the whole index
/// ([`recformer_model::cosine_scores`], as in training and evaluation).
#[derive(Debug)]
pub struct Recommender<B: Backend> {
    spec: ModelSpec,
    model: RecformerModel<B>,
    builder: InputBuilder,
    device: B::Device,
    keys: Vec<String>,
    rows: HashMap<String, usize>,
    texts: Vec<ItemMeta>,
    tokens: Vec<ItemTokens>,
    vectors: Tensor<B, 2>,
    normalized: Tensor<B, 2>,
    encoded: usize,
    batch_size: usize,
}

impl<B: Backend> Recommender<B> {
    /// Opens a model directory (or a run directory's `model/`) with its item index: config,
    /// tokenizer, weights, and `items.safetensors` with keys and texts (what `finetune` and
    /// `encode-items` write). Nothing is encoded.
    ///
    /// # Errors
    /// Everything [`ModelDir::open`] rejects; a directory without an item index, or with an index
    /// that stores no keys or texts (older files: use [`Recommender::from_catalogue`]).
    pub fn from_dir(path: &Path, device: &B::Device) -> Result<Self> {
        let md = ModelDir::open(path)?;
        let model = md.load_without_mlm_head::<B>(device)?.model;
        let Some(index) = md.load_items::<B>(device)? else {
            return Err(Error::NotAModelDir {
                dir: md.dir.clone(),
                what: "no items.safetensors: run `recformer encode-items` to write one, or build the recommender from a catalogue".into(),
            });
        };
        let (Some(keys), Some(texts)) = (index.keys, index.texts) else {
            return Err(Error::ItemIndex {
                path: index.path,
                reason: "stores no item keys or texts (written by an older version); write it again with `recformer encode-items`".into(),
            });
        };
        Self::from_parts(md.spec, model, keys, texts, index.vectors, device)
    }

    /// Encodes a whole catalogue (`(key, text)` pairs, row order) with `model`.
    ///
    /// # Errors
    /// Duplicate or no keys; tokenizer errors.
    pub fn from_catalogue(
        spec: ModelSpec,
        model: RecformerModel<B>,
        catalogue: &[(String, ItemMeta)],
        device: &B::Device,
    ) -> Result<Self> {
        let empty = Tensor::<B, 2>::zeros([0, spec.config().hidden_size], device);
        let mut rec = Self::from_parts(spec, model, Vec::new(), Vec::new(), empty, device)?;
        rec.add_items(catalogue)?;
        Ok(rec)
    }

    /// A recommender over an existing item matrix (row `i` = `keys[i]`, `texts[i]`).
    ///
    /// # Errors
    /// Counts that differ, duplicate keys, tokenizer errors.
    pub fn from_parts(
        spec: ModelSpec,
        model: RecformerModel<B>,
        keys: Vec<String>,
        texts: Vec<ItemMeta>,
        vectors: Tensor<B, 2>,
        device: &B::Device,
    ) -> Result<Self> {
        let [n, h] = vectors.dims();
        if keys.len() != n || texts.len() != n || h != spec.config().hidden_size {
            return Err(Error::InvalidData(format!(
                "item index: {} keys, {} texts and a [{n}, {h}] matrix for a model of hidden size {}",
                keys.len(),
                texts.len(),
                spec.config().hidden_size
            )));
        }
        let rows = index_keys(&keys, &HashMap::new())?;
        let tokens = spec
            .tokenizer()
            .encode_catalogue(&texts, &spec.data_config())?;
        Ok(Self {
            builder: spec.input_builder(),
            spec,
            model,
            device: device.clone(),
            keys,
            rows,
            texts,
            tokens,
            normalized: l2_normalize(vectors.clone()),
            vectors,
            encoded: 0,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Sequences per forward pass (items and histories). Default: [`DEFAULT_BATCH_SIZE`].
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Items in the index.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Item keys, row order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The text of an item.
    pub fn item(&self, key: &str) -> Option<&ItemMeta> {
        self.rows.get(key).map(|&r| &self.texts[r])
    }

    /// The row of an item.
    pub fn row(&self, key: &str) -> Option<usize> {
        self.rows.get(key).copied()
    }

    /// The model spec (config and tokenizer).
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The raw (not normalised) item matrix `[len, hidden]`.
    pub fn vectors(&self) -> &Tensor<B, 2> {
        &self.vectors
    }

    /// How many items this recommender has encoded with the model since it was built (loading
    /// an index encodes none; [`Recommender::add_items`] encodes only the new ones).
    pub fn encoded_items(&self) -> usize {
        self.encoded
    }

    /// Adds items given as text (cold start): each new item is encoded alone, as in training, and
    /// appended to the index; existing rows are not re-encoded.
    ///
    /// # Errors
    /// A key that is already in the index or repeated; tokenizer errors.
    pub fn add_items(&mut self, items: &[(String, ItemMeta)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
        let new_rows = index_keys(&keys, &self.rows)?;
        let texts: Vec<ItemMeta> = items.iter().map(|(_, t)| t.clone()).collect();
        let tokens = self
            .spec
            .tokenizer()
            .encode_catalogue(&texts, &self.spec.data_config())?;
        let start = self.keys.len();
        let histories: Vec<[usize; 1]> = (start..start + items.len()).map(|r| [r]).collect();
        let refs: Vec<&[usize]> = histories.iter().map(|h| h.as_slice()).collect();
        let mut all_tokens = std::mem::take(&mut self.tokens);
        all_tokens.extend(tokens);
        let vectors = encode_histories(
            &self.model,
            &refs,
            &all_tokens,
            &self.builder,
            self.batch_size,
            &self.device,
            &NoProgress,
            "encode new items",
        );
        self.tokens = all_tokens;
        self.encoded += items.len();
        self.normalized = Tensor::cat(
            vec![self.normalized.clone(), l2_normalize(vectors.clone())],
            0,
        );
        self.vectors = Tensor::cat(vec![self.vectors.clone(), vectors], 0);
        for (key, row) in new_rows {
            self.rows.insert(key, row + start);
        }
        self.keys.extend(keys);
        self.texts.extend(texts);
        Ok(())
    }

    /// Writes the item index (vectors, keys, texts) to `path`; [`Recommender::from_dir`] reads it
    /// back as `items.safetensors` of a model directory.
    pub fn save_index(&self, path: &Path) -> Result<()> {
        save_item_index(
            path,
            &self.vectors,
            Some(ItemRows {
                keys: &self.keys,
                texts: Some(&self.texts),
            }),
        )
    }
}

/// `key → position` for new keys, rejecting keys already in `existing` or repeated.
fn index_keys(
    keys: &[String],
    existing: &HashMap<String, usize>,
) -> Result<HashMap<String, usize>> {
    let mut out = HashMap::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        if existing.contains_key(key) || out.insert(key.clone(), i).is_some() {
            return Err(Error::InvalidData(format!(
                "item key `{key}` appears twice in the index"
            )));
        }
    }
    Ok(out)
}
