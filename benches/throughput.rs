//! Encoder throughput on any compiled backend, printed as a table (see `recformer::bench`).
//!
//! ```text
//! cargo bench --bench throughput -- --device cpu|flex|ndarray --preset mini --batch 4 --tokens 512
//! CUDARC_CUDA_VERSION=13000 cargo bench --features cuda --bench throughput -- --device cuda --preset base --batch 16 --tokens 1024
//! ```
//! The same measurement is available as `recformer bench` in release binaries.

use recformer::bench::{measure, ThroughputArgs, ThroughputRow};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_args() -> ThroughputArgs {
    let mut a = ThroughputArgs {
        device: "cpu".into(),
        preset: "mini".into(),
        batch: 2,
        tokens: 256,
        steps: 3,
        warmup: 1,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--device" => a.device = v,
            "--preset" => a.preset = v,
            "--batch" => a.batch = v.parse().expect("--batch N"),
            "--tokens" => a.tokens = v.parse().expect("--tokens N"),
            "--steps" => a.steps = v.parse().expect("--steps N"),
            "--warmup" => a.warmup = v.parse().expect("--warmup N"),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn main() {
    let a = parse_args();
    let row = match a.device.as_str() {
        "cpu" => measure::<recformer_model::backend::CpuAutodiff>(Default::default(), &a),
        "flex" => measure::<recformer_model::backend::FlexAutodiff>(Default::default(), &a),
        "ndarray" => measure::<recformer_model::backend::NdArrayAutodiff>(Default::default(), &a),
        #[cfg(feature = "wgpu")]
        "wgpu" => measure::<recformer_model::backend::WgpuAutodiff>(Default::default(), &a),
        #[cfg(feature = "cuda")]
        "cuda" => measure::<recformer_model::backend::CudaAutodiff>(Default::default(), &a),
        other => panic!("device {other} is not compiled in (features: wgpu, cuda)"),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", ThroughputRow::HEADER);
    println!("{}", row.markdown());
}
