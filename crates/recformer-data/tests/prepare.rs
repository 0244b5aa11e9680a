//! Preparation from raw Amazon 2018 files written here (plain and gzip), with bad records.
//! Expected outputs follow the official scripts' rules by hand (see each comment); the exact
//! strings are what Python's `json.dump` writes for the same dicts.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use recformer_data::prepare::{
    prepare_finetune_with_progress, Issue, PrepareReport, ProgressEvent, SourceLine,
};
use recformer_data::{
    prepare_finetune, prepare_pretrain, Error, FinetuneDataset, PrepareFinetuneOptions,
    PretrainCorpus,
};

fn write_plain(path: &Path, lines: &[&[u8]]) {
    let mut f = std::fs::File::create(path).unwrap();
    for line in lines {
        f.write_all(line).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

fn gz_bytes(lines: &[&[u8]]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    for line in lines {
        enc.write_all(line).unwrap();
        enc.write_all(b"\n").unwrap();
    }
    enc.finish().unwrap()
}

fn write_gz(path: &Path, lines: &[&[u8]]) {
    std::fs::write(path, gz_bytes(lines)).unwrap();
}

const FT_META: &[&[u8]] = &[
    br#"{"asin": "I1", "title": "Item one", "brand": "B1", "category": ["Sci", "Lab"], "price": "$1"}"#,
    br#"{"asin": "I2", "title": "Item two", "category": ["Sci"]}"#,
    br#"{"asin": "I3", "brand": "B3", "category": []}"#,
    br#"{"asin": "I8", "title": "broken"#,
    br#"{"asin": "I4", "title": null, "brand": "x"}"#,
    b"{\"asin\": \"I9\", \"title\": \"bad \xff\xfe bytes\"}",
    br#"{"asin": "I5", "title": "Item five", "brand": null, "category": null}"#,
    br#"{"asin": "I6", "title": "Caf\u00e9 six &amp; more", "brand": "B6", "category": ["A", "B", "C"]}"#,
    br#"{"asin": "I1", "title": "Item one v2", "brand": "B1", "category": ["Sci"]}"#,
    br#"{"asin": "I7", "title": "Item seven", "brand": "B7", "category": ["X"]}"#,
];

const FT_REVIEWS: &[&[u8]] = &[
    br#"{"reviewerID": "U3", "asin": "I7", "unixReviewTime": 2, "overall": 5.0}"#,
    br#"{"reviewerID": "U1", "asin": "I1", "unixReviewTime": 5}"#,
    br#"{"reviewerID": "U2", "asin": "I2", "unixReviewTime": 1}"#,
    br#"{"reviewerID": "U1", "asin": "I2", "unixReviewTime": 3}"#,
    br#"{"reviewerID": "U3", "asin": "I6", "unixReviewTime": 2}"#,
    br#"{"reviewerID": "U1", "asin": "I3", "unixReviewTime": 4}"#,
    br#"{"reviewerID": "U1", "asin": "I6", "unixReviewTime": 3}"#,
    br#"{"reviewerID": "U1", "asin": "#,
    br#"{"reviewerID": "U2", "asin": "I5", "unixReviewTime": 2}"#,
    br#"{"reviewerID": "U3", "asin": "I1", "unixReviewTime": 1}"#,
    br#"{"reviewerID": "U1", "asin": "I5", "unixReviewTime": 1}"#,
    br#"{"reviewerID": "U1", "asin": "I7"}"#,
    br#"{"reviewerID": "U2", "asin": "I6", "unixReviewTime": 3}"#,
    br#"{"reviewerID": "U3", "asin": "I2", "unixReviewTime": 4}"#,
    br#"{"reviewerID": "U1", "asin": "I7", "unixReviewTime": 9}"#,
    br#"{"reviewerID": null, "asin": "I1", "unixReviewTime": 3}"#,
];

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn lines(report: &PrepareReport, issue: Issue) -> Vec<(String, u64)> {
    let stats = report.issues.iter().find(|s| s.issue == issue).unwrap();
    stats
        .examples
        .iter()
        .map(|SourceLine { file, line }| {
            (file.file_name().unwrap().to_string_lossy().into(), *line)
        })
        .collect()
}

/// Official `finetune_data/process.py` on these records (bad lines removed):
/// reviewers in first-review order U3, U1, U2; U2 has 3 interactions (dropped, needs > 3);
/// uids U3 = 0, U1 = 1; iids by first appearance walking U3 then U1 in file order:
/// I7 0, I6 1, I1 2, I2 3, I5 4. U3 sorted by time (stable, I7 before I6 at t=2):
/// I1 I7 I6 I2 → train [2, 0], val [1], test [3]. U1: I5 I2 I6 I1 I7 → [4, 3, 1], [2], [0].
/// meta_data.json holds every usable record; I1's repeat replaces the value in place.
fn check_finetune_output(out: &Path, report: &PrepareReport, meta: &str, reviews: &str) {
    assert_eq!(read(out, "umap.json"), r#"{"U3": 0, "U1": 1}"#);
    assert_eq!(
        read(out, "smap.json"),
        r#"{"I7": 0, "I6": 1, "I1": 2, "I2": 3, "I5": 4}"#
    );
    assert_eq!(read(out, "train.json"), r#"{"0": [2, 0], "1": [4, 3, 1]}"#);
    assert_eq!(read(out, "val.json"), r#"{"0": [1], "1": [2]}"#);
    assert_eq!(read(out, "test.json"), r#"{"0": [3], "1": [0]}"#);
    assert_eq!(
        read(out, "meta_data.json"),
        concat!(
            r#"{"I1": {"title": "Item one v2", "brand": "B1", "category": "Sci"}, "#,
            r#""I2": {"title": "Item two", "brand": "", "category": "Sci"}, "#,
            r#""I5": {"title": "Item five", "brand": "", "category": ""}, "#,
            r#""I6": {"title": "Caf\u00e9 six &amp; more", "brand": "B6", "category": "A B C"}, "#,
            r#""I7": {"title": "Item seven", "brand": "B7", "category": "X"}}"#
        )
    );

    assert_eq!((report.users, report.items, report.interactions), (2, 5, 9));
    assert_eq!(report.meta_items, 5);
    assert_eq!(report.reviews_without_meta, 1);
    assert_eq!(report.users_too_short, 1);
    assert_eq!(report.users_sampled_out, 0);
    let m = |l| (meta.to_owned(), l);
    let r = |l| (reviews.to_owned(), l);
    assert_eq!(lines(report, Issue::MissingRequired("title")), [m(3), m(5)]);
    assert_eq!(lines(report, Issue::BadJson), [m(4), r(8)]);
    assert_eq!(lines(report, Issue::NonUtf8), [m(6)]);
    assert_eq!(lines(report, Issue::MissingOptional("brand")), [m(2), m(7)]);
    assert_eq!(lines(report, Issue::MissingOptional("category")), [m(7)]);
    assert_eq!(lines(report, Issue::DuplicateItem), [m(9)]);
    assert_eq!(
        lines(report, Issue::MissingRequired("unixReviewTime")),
        [r(12)]
    );
    assert_eq!(lines(report, Issue::MissingRequired("reviewerID")), [r(16)]);
    assert_eq!(report.skipped_records(), 7);
    assert_eq!(report.files.len(), 2);
    assert_eq!(report.files[0].lines, 10);
    assert_eq!(report.files[1].lines, 16);
    let text = report.to_string();
    assert!(text.contains("skipped: missing or null `title`"), "{text}");
    assert!(text.contains(&format!("{meta}:3")), "{text}");

    let ds = FinetuneDataset::load(out).unwrap();
    assert_eq!(ds.item_keys, ["I7", "I6", "I1", "I2", "I5"]);
    assert_eq!(ds.user_keys, ["U3", "U1"]);
    assert_eq!(ds.items[2].title(), "Item one v2");
    assert_eq!(ds.items[1].title(), "Caf\u{e9} six &amp; more");
    assert_eq!(ds.train[&1], vec![4, 3, 1]);
}

#[test]
fn finetune_from_plain_files() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, reviews, out) = (
        dir.path().join("meta_Sci.json"),
        dir.path().join("Sci_5.json"),
        dir.path().join("out"),
    );
    write_plain(&meta, FT_META);
    write_plain(&reviews, FT_REVIEWS);
    let report =
        prepare_finetune(&reviews, &meta, &out, &PrepareFinetuneOptions::default()).unwrap();
    check_finetune_output(&out, &report, "meta_Sci.json", "Sci_5.json");
}

/// Gzip is detected by magic bytes, not by name (the review file has no `.gz`), and gives the
/// same output; progress reaches the file size.
#[test]
fn finetune_from_gzip_files_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, reviews, out) = (
        dir.path().join("meta_Sci.json.gz"),
        dir.path().join("Sci_5.json"),
        dir.path().join("out"),
    );
    write_gz(&meta, FT_META);
    write_gz(&reviews, FT_REVIEWS);
    let events = std::cell::RefCell::new(Vec::new());
    let observer = |e: &ProgressEvent<'_>| {
        events.borrow_mut().push((
            e.file.to_path_buf(),
            e.bytes_read,
            e.total_bytes,
            e.finished,
        ))
    };
    let report = prepare_finetune_with_progress(
        &reviews,
        &meta,
        &out,
        &PrepareFinetuneOptions::default(),
        &observer,
    )
    .unwrap();
    check_finetune_output(&out, &report, "meta_Sci.json.gz", "Sci_5.json");
    let events = events.into_inner();
    for file in [&meta, &reviews] {
        let size = std::fs::metadata(file).unwrap().len();
        let last = events.iter().rev().find(|e| &e.0 == file).unwrap();
        assert_eq!((last.1, last.2, last.3), (size, size, true));
    }
}

#[test]
fn truncated_gzip_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, reviews) = (
        dir.path().join("meta.json.gz"),
        dir.path().join("cut_5.json.gz"),
    );
    write_plain(&meta, FT_META);
    let many: Vec<Vec<u8>> = (0..2000)
        .map(|i| {
            format!(r#"{{"reviewerID": "U{i}", "asin": "I1", "unixReviewTime": {i}}}"#).into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let bytes = gz_bytes(&refs);
    std::fs::write(&reviews, &bytes[..bytes.len() / 2]).unwrap();
    let err = prepare_finetune(
        &reviews,
        &meta,
        &dir.path().join("out"),
        &Default::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Gzip { .. }), "{err:?}");
    assert!(err.to_string().contains("cut_5.json.gz"), "{err}");
}

#[test]
fn missing_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let err = prepare_finetune(
        &missing,
        &missing,
        &dir.path().join("o"),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
}

/// Seeded user sampling is reproducible and only removes whole users.
#[test]
fn finetune_user_sampling_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, reviews) = (dir.path().join("meta.json"), dir.path().join("r.json"));
    write_plain(
        &meta,
        &[
            br#"{"asin": "A", "title": "a"}"#,
            br#"{"asin": "B", "title": "b"}"#,
        ],
    );
    let lines: Vec<Vec<u8>> = (0..400)
        .flat_map(|u| {
            (0..4).map(move |t| {
                format!(
                    r#"{{"reviewerID": "U{u}", "asin": "{}", "unixReviewTime": {t}}}"#,
                    ["A", "B"][t % 2]
                )
                .into_bytes()
            })
        })
        .collect();
    write_plain(
        &reviews,
        &lines.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    );
    let run = |seed, name: &str| {
        let out = dir.path().join(name);
        let opts = PrepareFinetuneOptions {
            sample_users: Some(0.2),
            seed,
        };
        let report = prepare_finetune(&reviews, &meta, &out, &opts).unwrap();
        (report, read(&out, "umap.json"))
    };
    let (a, umap_a) = run(5, "a");
    let (b, umap_b) = run(5, "b");
    let (_, umap_c) = run(6, "c");
    assert_eq!((a.users, &umap_a), (b.users, &umap_b));
    assert_ne!(umap_a, umap_c);
    assert_eq!(a.users + a.users_sampled_out, 400);
    assert!((40..=120).contains(&a.users), "{} users kept", a.users);
    assert_eq!(a.interactions, 4 * a.users);
    let bad = PrepareFinetuneOptions {
        sample_users: Some(1.5),
        seed: 0,
    };
    assert!(prepare_finetune(&reviews, &meta, &dir.path().join("d"), &bad).is_err());
}

/// Official pretraining scripts on these records: meta_asins {A, B, D, E} (C has no title),
/// seq_asins {A, B, C, E}, selected {A, B, E}; A's repeat in the dev meta file replaces its value.
/// Sequences keyed reviewer + "_" + file name, sorted by (time, asin):
/// U1_Auto_5.json: (5,B) (5,A) (1,E) → E A B; U2_Auto_5.json: A (C has no metadata);
/// U1_Elec_5.json.gz: A; U3_Elec_5.json.gz: B; dev U1_CDs_5.json: E; U4_CDs_5.json: E A.
#[test]
fn pretrain_corpus_from_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| -> PathBuf { dir.path().join(name) };
    write_plain(
        &p("meta_Auto.json"),
        &[
            br#"{"asin": "A", "title": "ta", "brand": "b", "category": ["c"]}"#,
            br#"{"asin": "B", "title": "tb", "category": ["c"]}"#,
            br#"{"asin": "C", "brand": "no title"}"#,
            br#"{"asin": "D", "title": "never reviewed"}"#,
        ],
    );
    write_gz(
        &p("meta_CDs.json.gz"),
        &[
            br#"{"asin": "E", "title": "te", "brand": "x", "category": ["Music"]}"#,
            br#"{"asin": "A", "title": "ta again", "brand": "b2", "category": []}"#,
        ],
    );
    write_plain(
        &p("Auto_5.json"),
        &[
            br#"{"reviewerID": "U1", "asin": "B", "unixReviewTime": 5}"#,
            br#"{"reviewerID": "U1", "asin": "A", "unixReviewTime": 5}"#,
            br#"{"reviewerID": "U2", "asin": "C", "unixReviewTime": 1}"#,
            br#"{"reviewerID": "U2", "asin": "A", "unixReviewTime": 2}"#,
            br#"not json"#,
            br#"{"reviewerID": "U1", "asin": "E", "unixReviewTime": 1}"#,
        ],
    );
    write_gz(
        &p("Elec_5.json.gz"),
        &[
            br#"{"reviewerID": "U1", "asin": "A", "unixReviewTime": 3}"#,
            br#"{"reviewerID": "U3", "asin": "B", "unixReviewTime": 2}"#,
        ],
    );
    write_plain(
        &p("CDs_5.json"),
        &[
            br#"{"reviewerID": "U1", "asin": "E", "unixReviewTime": 4}"#,
            br#"{"reviewerID": "U4", "asin": "A", "unixReviewTime": 1}"#,
            br#"{"reviewerID": "U4", "asin": "E", "unixReviewTime": 0}"#,
        ],
    );
    let out = p("pretrain");
    let report = prepare_pretrain(
        &[p("Auto_5.json"), p("Elec_5.json.gz")],
        &[p("meta_Auto.json")],
        &p("CDs_5.json"),
        &p("meta_CDs.json.gz"),
        &out,
    )
    .unwrap();
    assert_eq!(
        read(&out, "meta_data.json"),
        concat!(
            r#"{"A": {"title": "ta again", "brand": "b2", "category": ""}, "#,
            r#""B": {"title": "tb", "brand": "", "category": "c"}, "#,
            r#""E": {"title": "te", "brand": "x", "category": "Music"}}"#
        )
    );
    assert_eq!(
        read(&out, "train.json"),
        r#"[["E", "A", "B"], ["A"], ["A"], ["B"]]"#
    );
    assert_eq!(read(&out, "dev.json"), r#"[["E"], ["E", "A"]]"#);
    assert_eq!((report.users, report.dev_sequences), (6, 2));
    assert_eq!((report.items, report.interactions), (3, 9));
    assert_eq!(report.reviews_without_meta, 1);
    assert_eq!(report.count(Issue::MissingRequired("title")), 1);
    assert_eq!(report.count(Issue::BadJson), 1);
    assert_eq!(report.count(Issue::DuplicateItem), 1);

    let corpus = PretrainCorpus::load(&out).unwrap();
    assert_eq!(corpus.item_keys, ["A", "B", "E"]);
    assert_eq!(corpus.train, vec![vec![2, 0, 1], vec![0], vec![0], vec![1]]);
    assert_eq!(corpus.dev, vec![vec![2], vec![2, 0]]);
    assert_eq!(corpus.items[0].title(), "ta again");
}

#[test]
fn pretrain_load_rejects_unknown_items() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("meta_data.json"),
        r#"{"A": {"title": "a"}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("train.json"), r#"[["A", "Z"]]"#).unwrap();
    std::fs::write(dir.path().join("dev.json"), r#"[]"#).unwrap();
    let err = PretrainCorpus::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("train.json")
            && err.contains("\"Z\"")
            && err.contains("sequence 0, position 1"),
        "{err}"
    );
}

#[test]
fn in_domain_corpus_holds_training_sequences_only_with_held_out_users() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let src = data.join("scientific-recformer");
    let out = tempfile::tempdir().unwrap();
    let stats = recformer_data::prepare_in_domain_corpus(&src, out.path(), 10).unwrap();
    let ds = recformer_data::FinetuneDataset::load(&src).unwrap();
    let eligible: Vec<Vec<String>> = ds
        .train
        .values()
        .filter(|s| s.len() >= 2)
        .map(|s| s.iter().map(|&r| ds.item_keys[r].clone()).collect())
        .collect();
    assert_eq!(stats.train + stats.dev, eligible.len());
    assert_eq!(stats.dev, eligible.len() / 10);
    let read = |name: &str| -> Vec<Vec<String>> {
        serde_json::from_str(&std::fs::read_to_string(out.path().join(name)).unwrap()).unwrap()
    };
    let (train, dev) = (read("train.json"), read("dev.json"));
    assert_eq!((train.len(), dev.len()), (stats.train, stats.dev));
    // Every 10th eligible user is in dev, the rest in train, each exactly its training sequence.
    let (mut t, mut d) = (train.iter(), dev.iter());
    for (i, seq) in eligible.iter().enumerate() {
        let written = if (i + 1) % 10 == 0 {
            d.next()
        } else {
            t.next()
        };
        assert_eq!(written, Some(seq), "user {i}");
    }
    let corpus = recformer_data::PretrainCorpus::load(out.path()).unwrap();
    assert_eq!(corpus.num_items(), ds.num_items());
    assert!(recformer_data::prepare_in_domain_corpus(&src, out.path(), 1).is_err());
}
