//! `OptimizerStepper` in stages (gradients → accumulate → hook → clip → step) is the same
//! optimisation as `backward`, and the hook sees every optimizer step's summed gradients.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use recformer_train::schedule::{DecayKind, LrSchedule};
use recformer_train::stepper::{OptimizerStepper, StepperConfig};

type B = recformer_model::backend::CpuAutodiff;

fn config() -> StepperConfig {
    StepperConfig {
        schedule: LrSchedule {
            base_lr: 0.1,
            warmup_steps: 1,
            total_steps: 10,
            decay: DecayKind::Linear,
        },
        accumulation: 2,
        max_grad_norm: Some(0.5),
        weight_decay: 0.01,
        adam_epsilon: 1e-8,
    }
}

fn loss(model: &Linear<B>, i: usize) -> Tensor<B, 1> {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data([[1.0 + i as f32, -2.0, 0.5], [0.3, 0.2, -1.0]], &device);
    model.forward(x).powi_scalar(2).sum()
}

fn weights(m: &Linear<B>) -> Vec<f32> {
    m.weight
        .val()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap()
}

#[test]
fn stages_with_a_hook_equal_backward_and_the_hook_runs_once_per_step() {
    let device = Default::default();
    B::seed(&device, 5);
    let init = LinearConfig::new(3, 2).init::<B>(&device);
    // Parameters initialise lazily: materialise them once, so that both clones start equal.
    let _ = (init.weight.val(), init.bias.as_ref().map(|b| b.val()));

    let mut a = OptimizerStepper::<B, Linear<B>>::new(config());
    let mut model_a = init.clone();
    for i in 0..5 {
        let l = loss(&model_a, i);
        model_a = a.backward(model_a, l);
    }
    model_a = a.step(model_a); // the odd micro-batch, as at an epoch end

    let mut b = OptimizerStepper::<B, Linear<B>>::new(config());
    let mut model_b = init.clone();
    let mut hook_calls = 0;
    let mut hook_params = 0;
    for i in 0..5 {
        let grads = b.gradients(&model_b, loss(&model_b, i));
        b.accumulate(&model_b, grads);
        if b.ready() {
            model_b = b.step_with(model_b, |m, g: &mut GradientsParams| {
                hook_calls += 1;
                hook_params = m.num_params().min(g.len() * 100);
            });
        }
    }
    model_b = b.step_with(model_b, |_, _| hook_calls += 1);

    assert_eq!(weights(&model_a), weights(&model_b));
    assert_eq!(a.steps, 3);
    assert_eq!(b.steps, 3);
    assert_eq!(hook_calls, 3, "one call per optimizer step");
    assert!(hook_params > 0, "the hook sees the gradients of the model");
    assert_ne!(weights(&model_a), weights(&init), "the model was trained");
}
