//! A deterministic synthetic catalogue and user histories with learnable structure in the text.
//!
//! Items belong to a category (a path of words), have a product type and a brand. Users mostly stay
//! with the brand and category of their last purchase, sometimes switch brand inside the category,
//! and rarely jump anywhere. Popularity is flat by construction, so a model can only beat the
//! popularity baseline by reading the item text, which is exactly what RecFormer does.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

/// Size and seed of the synthetic world.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Number of items in the catalogue. Default: 400.
    pub num_items: usize,
    /// Number of users. Default: 600.
    pub num_users: usize,
    /// Shortest history (interactions per user, including the val and test items). Default: 5.
    pub min_len: usize,
    /// Longest history. Default: 12.
    pub max_len: usize,
    /// Probability that the next item keeps the brand and category of the last one. Default: 0.7.
    pub p_same_brand: f64,
    /// Probability that the next item keeps only the category. Default: 0.2.
    pub p_same_category: f64,
    /// Seed of the generator. Default: 7.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            num_items: 400,
            num_users: 600,
            min_len: 5,
            max_len: 12,
            p_same_brand: 0.7,
            p_same_category: 0.2,
            seed: 7,
        }
    }
}

const CATEGORIES: [(&str, [&str; 5]); 8] = [
    (
        "Lab Glassware",
        [
            "beaker",
            "flask",
            "graduated cylinder",
            "test tube rack",
            "petri dish",
        ],
    ),
    (
        "Electrical Testing",
        [
            "multimeter",
            "clamp meter",
            "voltage tester",
            "oscilloscope probe",
            "insulation tester",
        ],
    ),
    (
        "Soldering Tools",
        [
            "soldering iron",
            "solder wire",
            "desoldering pump",
            "flux pen",
            "soldering station",
        ],
    ),
    (
        "Safety Equipment",
        [
            "safety goggles",
            "nitrile gloves",
            "face shield",
            "ear muffs",
            "respirator mask",
        ],
    ),
    (
        "Measuring Tools",
        [
            "digital caliper",
            "micrometer",
            "tape measure",
            "feeler gauge",
            "dial indicator",
        ],
    ),
    (
        "Fasteners",
        [
            "hex bolts",
            "wood screws",
            "rivets",
            "wing nuts",
            "spring washers",
        ],
    ),
    (
        "Adhesives and Tapes",
        [
            "epoxy glue",
            "duct tape",
            "kapton tape",
            "super glue",
            "double sided tape",
        ],
    ),
    (
        "Janitorial Supplies",
        [
            "mop bucket",
            "trash bags",
            "floor cleaner",
            "microfiber cloths",
            "paper towels",
        ],
    ),
];

const BRANDS: [&str; 20] = [
    "Acmelab",
    "Borealis",
    "Corvex",
    "Dynatek",
    "Elmstone",
    "Fulcrum",
    "Gantry",
    "Helix",
    "Ironbark",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Northgate",
    "Orbitech",
    "Pioneer",
    "Quartzline",
    "Redwood",
    "Sterling",
    "Tundra",
];

const ADJECTIVES: [&str; 10] = [
    "Professional",
    "Compact",
    "Heavy Duty",
    "Premium",
    "Economy",
    "Industrial",
    "Precision",
    "Lightweight",
    "Deluxe",
    "Standard",
];

/// One synthetic item.
#[derive(Debug, Clone)]
pub struct SynthItem {
    /// Item key (like an ASIN).
    pub key: String,
    /// Title text.
    pub title: String,
    /// Brand text.
    pub brand: String,
    /// Category path, space-joined like the official preprocessing.
    pub category: String,
    category_idx: usize,
    brand_idx: usize,
}

/// The generated world: items (row = item id) and per-user chronological histories of item ids.
#[derive(Debug, Clone)]
pub struct SynthWorld {
    /// Catalogue, row = item id.
    pub items: Vec<SynthItem>,
    /// Histories, oldest first.
    pub users: Vec<Vec<usize>>,
}

/// Generates the world deterministically from `cfg.seed`.
pub fn generate(cfg: &SynthConfig) -> SynthWorld {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // Each brand is active in two categories.
    let brand_cats: Vec<[usize; 2]> = (0..BRANDS.len())
        .map(|b| [b % CATEGORIES.len(), (b * 3 + 1) % CATEGORIES.len()])
        .collect();
    let mut items = Vec::with_capacity(cfg.num_items);
    for i in 0..cfg.num_items {
        let brand_idx = rng.random_range(0..BRANDS.len());
        let category_idx = brand_cats[brand_idx][rng.random_range(0..2)];
        let (cat_name, types) = CATEGORIES[category_idx];
        let product = types[rng.random_range(0..types.len())];
        let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
        let model_no = rng.random_range(100..1000);
        items.push(SynthItem {
            key: format!("SYN{i:05}"),
            title: format!(
                "{} {adjective} {product} {}-{model_no}",
                BRANDS[brand_idx],
                &BRANDS[brand_idx][..3].to_uppercase()
            ),
            brand: BRANDS[brand_idx].to_string(),
            category: format!("Industrial & Scientific {cat_name}"),
            category_idx,
            brand_idx,
        });
    }
    let mut by_brand_cat: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    let mut by_cat: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        by_brand_cat
            .entry((it.brand_idx, it.category_idx))
            .or_default()
            .push(i);
        by_cat.entry(it.category_idx).or_default().push(i);
    }
    let all: Vec<usize> = (0..items.len()).collect();
    let mut users = Vec::with_capacity(cfg.num_users);
    for _ in 0..cfg.num_users {
        let len = rng.random_range(cfg.min_len..=cfg.max_len);
        let mut seq: Vec<usize> = Vec::with_capacity(len);
        let mut cur = *all.choose(&mut rng).expect("non-empty catalogue");
        seq.push(cur);
        while seq.len() < len {
            let it = &items[cur];
            let r: f64 = rng.random();
            let pool = if r < cfg.p_same_brand {
                &by_brand_cat[&(it.brand_idx, it.category_idx)]
            } else if r < cfg.p_same_brand + cfg.p_same_category {
                &by_cat[&it.category_idx]
            } else {
                &all
            };
            let candidates: Vec<usize> =
                pool.iter().copied().filter(|c| !seq.contains(c)).collect();
            let next = match candidates.choose(&mut rng) {
                Some(&c) => c,
                None => *all.choose(&mut rng).expect("non-empty catalogue"),
            };
            seq.push(next);
            cur = next;
        }
        users.push(seq);
    }
    SynthWorld { items, users }
}

impl SynthWorld {
    /// Writes the official RecFormer finetuning layout (`meta_data.json`, `smap.json`, `umap.json`,
    /// `train.json`, `val.json`, `test.json`) with leave-one-out splits.
    pub fn write_finetune_layout(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let mut meta = Map::new();
        let mut smap = Map::new();
        for (i, it) in self.items.iter().enumerate() {
            meta.insert(
                it.key.clone(),
                json!({"title": it.title, "brand": it.brand, "category": it.category}),
            );
            smap.insert(it.key.clone(), json!(i));
        }
        let mut umap = Map::new();
        let (mut train, mut val, mut test) = (Map::new(), Map::new(), Map::new());
        for (u, seq) in self.users.iter().enumerate() {
            let uid = u.to_string();
            umap.insert(format!("U{u:05}"), json!(u));
            let n = seq.len();
            train.insert(uid.clone(), json!(seq[..n - 2]));
            val.insert(uid.clone(), json!([seq[n - 2]]));
            test.insert(uid, json!([seq[n - 1]]));
        }
        let write = |name: &str, v: Map<String, Value>| {
            fs::write(
                dir.join(name),
                serde_json::to_vec(&Value::Object(v)).expect("json"),
            )
        };
        write("meta_data.json", meta)?;
        write("smap.json", smap)?;
        write("umap.json", umap)?;
        write("train.json", train)?;
        write("val.json", val)?;
        write("test.json", test)
    }

    /// Pretraining corpus in the official layout (`train.json`, `dev.json` as lists of item-key
    /// lists, plus `meta_data.json`): the users' training parts, with 10% of users held out as dev.
    pub fn write_pretrain_layout(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let mut meta = Map::new();
        for it in &self.items {
            meta.insert(
                it.key.clone(),
                json!({"title": it.title, "brand": it.brand, "category": it.category}),
            );
        }
        let keys = |seq: &[usize]| -> Vec<&str> {
            seq.iter().map(|&i| self.items[i].key.as_str()).collect()
        };
        let mut train = Vec::new();
        let mut dev = Vec::new();
        for (u, seq) in self.users.iter().enumerate() {
            let part = keys(&seq[..seq.len() - 2]);
            if u % 10 == 9 {
                dev.push(part);
            } else {
                train.push(part);
            }
        }
        fs::write(
            dir.join("meta_data.json"),
            serde_json::to_vec(&Value::Object(meta)).expect("json"),
        )?;
        fs::write(
            dir.join("train.json"),
            serde_json::to_vec(&train).expect("json"),
        )?;
        fs::write(
            dir.join("dev.json"),
            serde_json::to_vec(&dev).expect("json"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_structured() {
        let cfg = SynthConfig {
            num_items: 120,
            num_users: 80,
            ..SynthConfig::default()
        };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.users, b.users);
        assert_eq!(a.items.len(), 120);
        // Consecutive items share the brand far more often than chance (1/20).
        let (mut same, mut total) = (0usize, 0usize);
        for seq in &a.users {
            assert!(seq.len() >= cfg.min_len && seq.len() <= cfg.max_len);
            for w in seq.windows(2) {
                total += 1;
                if a.items[w[0]].brand == a.items[w[1]].brand {
                    same += 1;
                }
            }
        }
        assert!(same as f64 / total as f64 > 0.4, "{same}/{total}");
        let c = generate(&SynthConfig { seed: 8, ..cfg });
        assert_ne!(a.users, c.users);
    }
}
