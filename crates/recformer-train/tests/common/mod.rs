//! A tiny synthetic world for tests: WordPiece vocabulary, catalogue, users, tiny model config.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use recformer_data::{
    FinetuneDataset, ItemMeta, ItemTokens, PretrainCorpus, RecformerDataConfig, RecformerTokenizer,
};
use recformer_model::RecformerConfig;
use recformer_train::InputBuilder;

pub type B = recformer_model::backend::CpuAutodiff;
pub type Inner = recformer_model::backend::Cpu;

const COLORS: [&str; 4] = ["red", "green", "blue", "yellow"];
const FRUITS: [&str; 3] = ["apple", "pear", "plum"];
const BRANDS: [&str; 2] = ["acme", "zeta"];

pub struct World {
    pub tokenizer: RecformerTokenizer,
    pub data_config: RecformerDataConfig,
    pub model_config: RecformerConfig,
    pub dataset: FinetuneDataset,
    pub corpus: PretrainCorpus,
    pub item_tokens: Vec<ItemTokens>,
    pub builder: InputBuilder,
    pub spec: recformer_train::ModelSpec,
}

pub fn items() -> Vec<ItemMeta> {
    let mut out = Vec::new();
    for (i, c) in COLORS.iter().enumerate() {
        for f in FRUITS {
            out.push(ItemMeta::new(
                format!("{c} {f}"),
                BRANDS[i % 2],
                "food fresh",
            ));
        }
    }
    out
}

/// 12 items; users follow `item -> item + 1 (mod 12)` chains.
pub fn world(dir: &Path) -> World {
    let mut vocab = vec![
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "title", "brand", "category",
    ];
    vocab.extend(COLORS);
    vocab.extend(FRUITS);
    vocab.extend(BRANDS);
    vocab.extend(["food", "fresh"]);
    let path = dir.join("vocab.txt");
    std::fs::write(&path, vocab.join("\n") + "\n").unwrap();
    let tokenizer = RecformerTokenizer::from_wordpiece_vocab(&path, true).unwrap();

    let mut model_config = RecformerConfig::tiny();
    model_config.pad_token_id = tokenizer.pad_token_id() as usize;
    let data_config = recformer_train::model_dir::data_config(&model_config);
    let items = items();
    let n = items.len();
    let mut train = BTreeMap::new();
    let mut val = BTreeMap::new();
    let mut test = BTreeMap::new();
    let mut seqs = Vec::new();
    for u in 0..24usize {
        let start = (u * 5) % n;
        let len = 2 + u % 3;
        let seq: Vec<usize> = (0..len + 2).map(|k| (start + k) % n).collect();
        train.insert(u, seq[..len].to_vec());
        val.insert(u, seq[len]);
        test.insert(u, seq[len + 1]);
        seqs.push(seq);
    }
    let dataset = FinetuneDataset {
        item_keys: (0..n).map(|i| format!("I{i}")).collect(),
        items: items.clone(),
        train,
        val,
        test,
        user_keys: (0..24).map(|u| format!("U{u}")).collect(),
    };
    let corpus = PretrainCorpus {
        item_keys: dataset.item_keys.clone(),
        items: items.clone(),
        train: seqs[..18].to_vec(),
        dev: seqs[18..].to_vec(),
    };
    let item_tokens = tokenizer.encode_catalogue(&items, &data_config).unwrap();
    let builder = InputBuilder::new(&tokenizer, data_config);
    let spec = recformer_train::ModelSpec::new(model_config.clone(), tokenizer.clone()).unwrap();
    World {
        tokenizer,
        data_config,
        model_config,
        dataset,
        corpus,
        item_tokens,
        builder,
        spec,
    }
}

/// Finetunes a fresh tiny model (backend seed 7) on `w` in `dir`, stopping after `stop` epochs
/// of this call when given.
pub fn run_finetune(
    w: &World,
    dir: &Path,
    config: &recformer_train::FinetuneConfig,
    stop: Option<usize>,
) -> recformer_train::FinetuneOutcome {
    use burn::tensor::backend::Backend;
    let device = Default::default();
    B::seed(&device, 7);
    let model = w.model_config.init_model::<B>(&device);
    let data = recformer_train::FinetuneData {
        spec: &w.spec,
        dataset: &w.dataset,
        item_tokens: &w.item_tokens,
    };
    recformer_train::finetune(
        model,
        config,
        &data,
        &recformer_train::RunDir::create(dir).unwrap(),
        &device,
        &recformer_train::RunControl {
            stop_after_epochs: stop,
            ..recformer_train::RunControl::default()
        },
        &recformer_train::NoProgress,
    )
    .unwrap()
}
