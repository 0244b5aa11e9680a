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

fn bias(m: &Linear<B>) -> Vec<f32> {
    let bias = m.bias.as_ref().expect("bias").val();
    bias.into_data().convert::<f32>().into_vec().unwrap()
}

fn bias_times_zero(m: &Linear<B>) -> Tensor<B, 1> {
    m.bias.as_ref().unwrap().val().mul_scalar(0.0).sum()
}

/// A parameter listed with `with_zero_gradients_for` that the loss does not reach is stepped as
/// if the loss reached it with an exactly zero gradient (weight decay shrinks it, as
/// `torch.optim.AdamW` does); without the list it is left alone.
#[test]
fn listed_parameters_without_a_gradient_step_as_with_a_zero_one() {
    let device = Default::default();
    B::seed(&device, 9);
    let init = LinearConfig::new(3, 2).init::<B>(&device);
    let _ = (init.weight.val(), init.bias.as_ref().map(|b| b.val()));
    let weight_loss = |m: &Linear<B>| m.weight.val().powi_scalar(2).sum();
    let train = |mut stepper: OptimizerStepper<B, Linear<B>>, reach_bias: bool| {
        let mut model = init.clone();
        for _ in 0..4 {
            let mut l = weight_loss(&model);
            if reach_bias {
                // In the graph, with a gradient of exactly zero.
                l = l + bias_times_zero(&model);
            }
            model = stepper.backward(model, l);
        }
        model
    };
    let bias_ids = |m: &Linear<B>| vec![m.bias.as_ref().unwrap().id];
    for weight_decay in [0.01, 0.0] {
        let config = StepperConfig {
            weight_decay,
            ..config()
        };
        let reached = train(OptimizerStepper::new(config), true);
        let listed = train(
            OptimizerStepper::new(config).with_zero_gradients_for(bias_ids),
            false,
        );
        let unlisted = train(OptimizerStepper::new(config), false);
        assert_eq!(bias(&listed), bias(&reached), "weight decay {weight_decay}");
        assert_eq!(
            weights(&listed),
            weights(&reached),
            "weight decay {weight_decay}"
        );
        assert_eq!(bias(&unlisted), bias(&init), "weight decay {weight_decay}");
        if weight_decay != 0.0 {
            assert_ne!(bias(&reached), bias(&init), "weight decay moves the bias");
        }
    }
}
