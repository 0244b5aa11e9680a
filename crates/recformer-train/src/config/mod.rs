//! Training configurations (serde; loadable from JSON or TOML; saved into the run directory).
//!
//! Every field has the official default (documented as "Default: …"); a file may give only the
//! fields it changes. The settings both recipes share are one [`OptimizerConfig`], flattened:
//! files keep the official flat key names (`config/flat.rs` explains how).

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

mod finetune;
pub(crate) mod flat;
mod optimizer;
mod pretrain;

pub use finetune::{FinetuneConfig, FinetuneVariant};
pub use optimizer::OptimizerConfig;
pub use pretrain::PretrainConfig;

/// Reads a config from `path`: TOML if the extension is `.toml`, JSON otherwise.
fn load_file<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).map_err(|source| Error::Toml {
            path: path.to_path_buf(),
            source,
        })
    } else {
        serde_json::from_str(&text).map_err(|e| Error::json(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_take_defaults_and_unknown_fields_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ft.toml");
        std::fs::write(&p, "num_train_epochs = 4\nvariant = \"fix\"\n").unwrap();
        let c = FinetuneConfig::from_file(&p).unwrap();
        assert_eq!(c.num_train_epochs, 4);
        assert_eq!(c.variant, FinetuneVariant::Fix);
        assert_eq!(c.optimizer.warmup_steps, 100);
        assert_eq!(c.optimizer.adam_epsilon, 1e-8);

        let p = dir.path().join("pt.json");
        std::fs::write(&p, r#"{"batch_size": 4, "bogus": 1}"#).unwrap();
        let err = PretrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");

        std::fs::write(&p, r#"{"batch_size": 0}"#).unwrap();
        let err = PretrainConfig::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("batch_size"), "{err}");
    }

    #[test]
    fn official_total_steps() {
        let c = FinetuneConfig::default();
        // 1000 users -> 63 micro-batches -> 7 optimizer steps per epoch -> 7 * 128
        assert_eq!(c.total_steps(1000), 7 * 128);
        let both = FinetuneConfig {
            schedule_epochs: Some(256),
            ..c.clone()
        };
        assert_eq!(both.total_steps(1000), 7 * 256);
    }

    #[test]
    fn optimizer_keys_are_flat_and_missing_ones_take_the_recipe_default() {
        // Each recipe's own defaults, not OptimizerConfig's, fill what a file leaves out.
        let ft: FinetuneConfig = toml::from_str("learning_rate = 1e-4").unwrap();
        let pt: PretrainConfig = toml::from_str("learning_rate = 1e-4").unwrap();
        assert_eq!(ft.optimizer.learning_rate, 1e-4);
        assert_eq!(pt.optimizer.learning_rate, 1e-4);
        assert_eq!(
            (ft.optimizer.warmup_steps, ft.optimizer.max_grad_norm),
            (100, None)
        );
        assert_eq!(
            (pt.optimizer.warmup_steps, pt.optimizer.max_grad_norm),
            (0, Some(1.0))
        );
        // An empty file is the recipe's Default.
        let empty: PretrainConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, PretrainConfig::default());

        // Saved configs are one flat map (the official key names) and read back equal.
        let json = serde_json::to_value(&pt).unwrap();
        let obj = json.as_object().unwrap();
        assert!(obj.contains_key("learning_rate") && obj.contains_key("seed"));
        assert!(!obj.contains_key("optimizer"), "{json}");
        let back: PretrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, pt);
        let back: FinetuneConfig = toml::from_str(&toml::to_string(&ft).unwrap()).unwrap();
        assert_eq!(back, ft);
    }

    #[test]
    fn bad_keys_and_values_name_the_field() {
        let err = serde_json::from_str::<FinetuneConfig>(r#"{"learning_rat": 1e-4}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `learning_rat`"), "{err}");
        assert!(err.contains("learning_rate"), "expected keys listed: {err}");
        // A nested table is not how the optimizer keys are written.
        let err = toml::from_str::<PretrainConfig>("[optimizer]\nlearning_rate = 1e-4\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `optimizer`"), "{err}");

        let err = toml::from_str::<FinetuneConfig>("warmup_steps = \"ten\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `warmup_steps`"), "{err}");
        let err = serde_json::from_str::<FinetuneConfig>(r#"{"variant": "both"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `variant`"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ft.toml");
        std::fs::write(&p, "learning_rate = 0\n").unwrap();
        let err = FinetuneConfig::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("learning_rate"), "{err}");
    }
}
