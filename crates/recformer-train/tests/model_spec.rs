//! `ModelSpec`: a config and a tokenizer that do not fit together are an error, at build time.

mod common;

use recformer_train::ModelSpec;

#[test]
fn a_tokenizer_and_config_that_disagree_are_errors_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::world(dir.path());
    let spec = ModelSpec::new(w.model_config.clone(), w.tokenizer.clone()).unwrap();
    assert_eq!(spec.data_config(), w.data_config);
    assert_eq!(spec.input_builder(), w.builder);

    let mut c = w.model_config.clone();
    c.pad_token_id = w.tokenizer.pad_token_id() as usize + 1;
    let err = ModelSpec::new(c, w.tokenizer.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("pad_token_id"), "{err}");

    let mut c = w.model_config.clone();
    c.vocab_size = w.tokenizer.vocab_size() - 1;
    let err = ModelSpec::new(c, w.tokenizer.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("vocab_size"), "{err}");

    // A position table too short for max_token_num is the config's own error.
    let mut c = w.model_config.clone();
    c.max_position_embeddings = c.max_token_num;
    let err = ModelSpec::new(c.clone(), w.tokenizer.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_position_embeddings"), "{err}");
    // `fit` adapts a preset: vocabulary, pad id and position table.
    c.vocab_size = 5;
    let fitted = ModelSpec::fit(c, w.tokenizer.clone()).unwrap();
    assert_eq!(fitted.config().vocab_size, w.tokenizer.vocab_size());
}
