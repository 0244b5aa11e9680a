//! `FusedAdamW` is Burn's `AdamW`: the same parameters after several steps on a real module
//! (every parameter through the fused kernel on the default CPU backend), and optimizer records
//! written by one continue, bit for bit, in the other (checkpoints of earlier runs resume).

use burn::module::Param;
use burn::nn::Linear;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData};
use recformer_train::checkpoint::{load_record, save_record};
use recformer_train::optim::{adamw_config, FusedAdamW};

type B = recformer_model::backend::CpuAutodiff;

const WEIGHT_DECAY: f64 = 0.01;
const EPSILON: f64 = 1e-8;

/// Values in [-1, 1) from a hash of their index (the tests of a binary run in parallel, and
/// Burn's generator is one per process: its draws would depend on the other test's).
fn values(n: usize, salt: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let x = (i ^ (salt << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

fn grads(model: &Linear<B>, step: usize) -> GradientsParams {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data(
        TensorData::new(values(33 * 70, 100 + step as u64), [33, 70]),
        &device,
    );
    let loss = model.forward(x).tanh().sum();
    GradientsParams::from_grads(loss.backward(), model)
}

fn bits(model: &Linear<B>) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for t in [
        model.weight.val(),
        model.bias.as_ref().unwrap().val().unsqueeze(),
    ] {
        let data = t.into_data().convert::<f32>();
        out.extend(data.as_slice::<f32>().unwrap().iter().map(|x| x.to_bits()));
    }
    out
}

fn steps<O: Optimizer<Linear<B>, B>>(
    optim: &mut O,
    mut model: Linear<B>,
    range: std::ops::Range<usize>,
) -> Linear<B> {
    for step in range {
        let g = grads(&model, step);
        model = optim.step(1e-3 / (1 + step) as f64, model, g);
    }
    model
}

fn start() -> Linear<B> {
    let device = Default::default();
    let weight = Tensor::from_data(TensorData::new(values(70 * 45, 1), [70, 45]), &device);
    let bias = Tensor::from_data(TensorData::new(values(45, 2), [45]), &device);
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    }
}

#[test]
fn the_same_trajectory_as_burns_adamw() {
    let mut burn: OptimizerAdaptor<AdamW, Linear<B>, B> =
        adamw_config(WEIGHT_DECAY, EPSILON).init();
    let mut fused = FusedAdamW::new(WEIGHT_DECAY, EPSILON).init::<B, Linear<B>>();
    let theirs = steps(&mut burn, start(), 0..6);
    let ours = steps(&mut fused, start(), 0..6);
    assert_eq!(bits(&ours), bits(&theirs));
    assert_ne!(
        bits(&ours),
        bits(&start()),
        "the steps moved the parameters"
    );
}

#[test]
fn records_of_either_continue_in_the_other() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optim.mpk");

    // Three steps with Burn's AdamW, its record saved; three more with the fused one loaded
    // from it, against six with Burn's alone.
    let mut burn: OptimizerAdaptor<AdamW, Linear<B>, B> =
        adamw_config(WEIGHT_DECAY, EPSILON).init();
    let half = steps(&mut burn, start(), 0..3);
    save_record::<B, _>(&path, burn.to_record()).unwrap();
    let reference = steps(&mut burn, half.clone(), 3..6);

    let fused = FusedAdamW::new(WEIGHT_DECAY, EPSILON).init::<B, Linear<B>>();
    let mut fused = fused.load_record(load_record::<B, _>(&path, &device).unwrap());
    let continued = steps(&mut fused, half.clone(), 3..6);
    assert_eq!(bits(&continued), bits(&reference));

    // And back: the fused optimizer's record continues in Burn's.
    save_record::<B, _>(&path, fused.to_record()).unwrap();
    let burn: OptimizerAdaptor<AdamW, Linear<B>, B> = adamw_config(WEIGHT_DECAY, EPSILON).init();
    let mut burn = burn.load_record(load_record::<B, _>(&path, &device).unwrap());
    let more_burn = steps(&mut burn, continued.clone(), 6..8);
    let more_fused = steps(&mut fused, continued, 6..8);
    assert_eq!(bits(&more_burn), bits(&more_fused));
}
