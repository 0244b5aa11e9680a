//! `Recommender`: top-k against a brute-force reference, excluded history, cold-start items
//! encoded alone, keys through `save_index` / `from_dir`, and an index of another dataset.

mod common;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use common::Inner;
use recformer_data::ItemMeta;
use recformer_model::{save_safetensors, RecformerModel};
use recformer_train::checkpoint::{load_item_index, save_item_matrix};
use recformer_train::{encode_histories, ModelDir, ModelSpec, NoProgress, Recommender};

struct Setup {
    w: common::World,
    spec: ModelSpec,
    model: RecformerModel<Inner>,
    catalogue: Vec<(String, ItemMeta)>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let w = common::world(dir.path());
    let device = Default::default();
    Inner::seed(&device, 11);
    // A wide initialisation, so that random item vectors differ well beyond float error (the
    // default 0.02 gives cosines within 1e-5 of each other).
    let mut config = w.model_config.clone();
    config.initializer_range = 1.0;
    let spec = ModelSpec::new(config, w.tokenizer.clone()).unwrap();
    let model = spec.config().init_model::<Inner>(&device);
    let catalogue = w
        .dataset
        .item_keys
        .iter()
        .cloned()
        .zip(w.dataset.items.iter().cloned())
        .collect();
    Setup {
        w,
        spec,
        model,
        catalogue,
        _dir: dir,
    }
}

fn rows(t: &Tensor<Inner, 2>) -> Vec<Vec<f32>> {
    let [_, h] = t.dims();
    let v: Vec<f32> = t.to_data().convert::<f32>().into_vec().unwrap();
    v.chunks(h).map(<[f32]>::to_vec).collect()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-8);
    dot / (na * nb)
}

/// Every item's score for `history` (catalogue rows), computed on the host from the encoder's
/// raw vectors: `(row, cos / temp)`, best first, ties by row.
fn brute_force(s: &Setup, history: &[usize], exclude: bool) -> Vec<(usize, f32)> {
    let device = Default::default();
    let user = encode_histories(
        &s.model,
        &[history],
        &s.w.item_tokens,
        &s.w.builder,
        8,
        &device,
        &NoProgress,
        "user",
    );
    let user = rows(&user).remove(0);
    let singles: Vec<[usize; 1]> = (0..s.w.item_tokens.len()).map(|i| [i]).collect();
    let refs: Vec<&[usize]> = singles.iter().map(|h| h.as_slice()).collect();
    let items = encode_histories(
        &s.model,
        &refs,
        &s.w.item_tokens,
        &s.w.builder,
        8,
        &device,
        &NoProgress,
        "items",
    );
    let temp = s.spec.config().temp as f32;
    let mut scored: Vec<(usize, f32)> = rows(&items)
        .iter()
        .enumerate()
        .filter(|(r, _)| !(exclude && history.contains(r)))
        .map(|(r, v)| (r, cos(&user, v) / temp))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

fn keys_of(s: &Setup, rows: &[usize]) -> Vec<String> {
    rows.iter()
        .map(|&r| s.w.dataset.item_keys[r].clone())
        .collect()
}

#[test]
fn top_k_equals_a_brute_force_reference_with_and_without_the_history() {
    let s = setup();
    let device = Default::default();
    let rec = Recommender::from_catalogue(s.spec.clone(), s.model.clone(), &s.catalogue, &device)
        .unwrap();
    let small = Recommender::from_catalogue(s.spec.clone(), s.model.clone(), &s.catalogue, &device)
        .unwrap()
        .batch_size(2);
    let histories: [&[usize]; 3] = [&[0, 1, 2], &[5], &[11, 3, 7, 3]];
    for exclude in [false, true] {
        let keys: Vec<Vec<String>> = histories.iter().map(|h| keys_of(&s, h)).collect();
        let refs: Vec<Vec<&str>> = keys
            .iter()
            .map(|k| k.iter().map(String::as_str).collect())
            .collect();
        let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        let got = rec.recommend_batch(&refs, 5, exclude).unwrap();
        for (h, recs) in histories.iter().zip(&got) {
            let want = brute_force(&s, h, exclude);
            assert_eq!(recs.len(), 5);
            for (r, (row, score)) in recs.iter().zip(&want) {
                assert_eq!(
                    r.row, *row,
                    "history {h:?} exclude {exclude}: {recs:?} vs {want:?}"
                );
                assert_eq!(r.key, s.w.dataset.item_keys[*row]);
                assert!((r.score - score).abs() < 1e-3, "{} vs {score}", r.score);
            }
            if exclude {
                assert!(recs.iter().all(|r| !h.contains(&r.row)));
            }
        }
        // Users ranked in chunks of 2 (two score matrices) get the same lists.
        let chunked = small.recommend_batch(&refs, 5, exclude).unwrap();
        for (a, b) in chunked.iter().zip(&got) {
            assert_eq!(
                a.iter().map(|r| r.row).collect::<Vec<_>>(),
                b.iter().map(|r| r.row).collect::<Vec<_>>()
            );
            assert!(a
                .iter()
                .zip(b)
                .all(|(x, y)| (x.score - y.score).abs() < 1e-4));
        }
        // One history alone gives what it gets in a batch.
        let one = rec.recommend(refs[2], 5, exclude).unwrap();
        assert_eq!(
            one.iter().map(|r| r.row).collect::<Vec<_>>(),
            got[2].iter().map(|r| r.row).collect::<Vec<_>>()
        );
    }
    // k larger than what is left after excluding the history: every other item, once.
    let all = rec.recommend(&["I0", "I1"], 100, true).unwrap();
    assert_eq!(all.len(), s.catalogue.len() - 2);
    assert!(rec.recommend(&["NOPE"], 3, true).is_err());
    assert!(rec.recommend(&[], 3, true).is_err());
}

#[test]
fn cold_start_items_are_encoded_alone_and_the_rest_is_not_re_encoded() {
    let s = setup();
    let device = Default::default();
    let (old, new) = s.catalogue.split_at(9);
    let mut rec =
        Recommender::from_catalogue(s.spec.clone(), s.model.clone(), old, &device).unwrap();
    assert_eq!(rec.encoded_items(), 9);
    let before = rows(rec.vectors());
    rec.add_items(new).unwrap();
    assert_eq!(rec.encoded_items(), 12, "only the 3 new items are encoded");
    assert_eq!(rec.len(), 12);
    let after = rows(rec.vectors());
    assert_eq!(&after[..9], &before[..], "existing rows untouched");
    // The new rows are what encoding the whole catalogue at once gives.
    let full = Recommender::from_catalogue(s.spec.clone(), s.model.clone(), &s.catalogue, &device)
        .unwrap();
    for (a, b) in after.iter().zip(rows(full.vectors())) {
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
    }
    // A key already in the index is an error, and nothing is added.
    let err = rec.add_items(&new[..1]).unwrap_err().to_string();
    assert!(err.contains(&new[0].0), "{err}");
    assert_eq!(rec.len(), 12);
    // A cold-start item can be recommended and used in a history.
    let recs = rec.recommend(&[new[0].0.as_str()], 12, false).unwrap();
    assert_eq!(recs.len(), 12);
}

#[test]
fn keys_and_texts_round_trip_through_save_index_and_from_dir() {
    let s = setup();
    let device = Default::default();
    let rec = Recommender::from_catalogue(s.spec.clone(), s.model.clone(), &s.catalogue, &device)
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("weights.safetensors");
    save_safetensors(&s.model, None, None, &weights).unwrap();
    let index = tmp.path().join("index.safetensors");
    rec.save_index(&index).unwrap();
    let md = ModelDir::export(&tmp.path().join("model"), &s.spec, &weights, Some(&index)).unwrap();

    let loaded = Recommender::<Inner>::from_dir(&md.dir, &device).unwrap();
    assert_eq!(loaded.encoded_items(), 0, "loading encodes nothing");
    assert_eq!(loaded.keys(), rec.keys());
    for (key, text) in &s.catalogue {
        assert_eq!(loaded.item(key), Some(text));
    }
    assert_eq!(rows(loaded.vectors()), rows(rec.vectors()));
    let a = rec.recommend(&["I3", "I4"], 4, true).unwrap();
    let b = loaded.recommend(&["I3", "I4"], 4, true).unwrap();
    assert_eq!(a, b);

    let stored = load_item_index::<Inner>(&md.dir.join("items.safetensors"), &device).unwrap();
    stored.check_keys(&s.w.dataset.item_keys).unwrap();
}

#[test]
fn an_index_of_another_dataset_is_an_error() {
    let s = setup();
    let device = Default::default();
    let rec = Recommender::from_catalogue(s.spec.clone(), s.model.clone(), &s.catalogue, &device)
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("items.safetensors");
    rec.save_index(&path).unwrap();
    let index = load_item_index::<Inner>(&path, &device).unwrap();

    // Same item count, other keys: caught by key, naming the first row that differs.
    let mut other = s.w.dataset.item_keys.clone();
    other.swap(4, 7);
    let err = index.check_keys(&other).unwrap_err().to_string();
    assert!(err.contains("row 4") && err.contains("I4"), "{err}");
    let err = index.check_keys(&other[..11]).unwrap_err().to_string();
    assert!(err.contains("12") && err.contains("11"), "{err}");

    // A keyless (older) file is checked by count, and cannot serve by itself.
    save_item_matrix(&path, rec.vectors()).unwrap();
    let keyless = load_item_index::<Inner>(&path, &device).unwrap();
    assert!(keyless.keys.is_none());
    keyless.check_keys(&other).unwrap();
    assert!(keyless.check_keys(&other[..11]).is_err());
    let weights = tmp.path().join("weights.safetensors");
    save_safetensors(&s.model, None, None, &weights).unwrap();
    let md = ModelDir::export(&tmp.path().join("model"), &s.spec, &weights, Some(&path)).unwrap();
    let err = Recommender::<Inner>::from_dir(&md.dir, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("keys"), "{err}");
}
