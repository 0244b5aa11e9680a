//! Optimizer helpers matching PyTorch semantics: AdamW with explicit `eps`, global-norm gradient
//! clipping (`torch.nn.utils.clip_grad_norm_`) and gradient scaling.
//!
//! Burn's `GradientClippingConfig::Norm` clips every tensor separately, which is *not* what
//! PyTorch/Lightning do, so clipping is implemented here over all gradients at once.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, AdamWState, GradientsParams, LearningRate, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use recformer_model::fused::{adamw_update, AdamWHyper};

/// AdamW configured like `torch.optim.AdamW(lr, betas=(0.9, 0.999), eps, weight_decay)`.
///
/// Burn's default `eps` (1e-5) and weight decay (1e-4) differ from PyTorch; both are set here.
pub fn adamw_config(weight_decay: f64, epsilon: f64) -> AdamWConfig {
    let h = adamw_hyper(weight_decay, epsilon);
    AdamWConfig::new()
        .with_beta_1(h.beta_1)
        .with_beta_2(h.beta_2)
        .with_epsilon(h.epsilon)
        .with_weight_decay(h.weight_decay)
}

fn adamw_hyper(weight_decay: f64, epsilon: f64) -> AdamWHyper {
    AdamWHyper {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: epsilon as f32,
        weight_decay: weight_decay as f32,
    }
}

/// Burn's `AdamW` (configured by [`adamw_config`]) with its update fused into one parallel pass
/// per parameter where the backend has the kernel ([`recformer_model::fused::adamw_update`]:
/// NdArray f32), bit for bit the same; Burn's own step everywhere else. Its state is Burn's
/// `AdamWState`, so optimizer records written with either load into the other.
#[derive(Clone)]
pub struct FusedAdamW {
    hyper: AdamWHyper,
    burn: AdamW,
}

impl FusedAdamW {
    /// AdamW with PyTorch's betas, `weight_decay` and `epsilon` (as [`adamw_config`]).
    pub fn new(weight_decay: f64, epsilon: f64) -> Self {
        Self {
            hyper: adamw_hyper(weight_decay, epsilon),
            burn: adamw_config(weight_decay, epsilon).build(),
        }
    }

    /// This optimizer for the parameters of `M` (Burn's adaptor, without per-tensor clipping:
    /// [`clip_grad_norm`] clips all gradients together).
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

impl<B: Backend> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        match adamw_update(&self.hyper, lr, tensor, grad, state.map(|s| s.momentum)) {
            Ok((tensor, momentum)) => (tensor, Some(AdamWState::new(momentum))),
            Err((tensor, grad, momentum)) => {
                self.burn
                    .step(lr, tensor, grad, momentum.map(AdamWState::new))
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}

struct SquaredNorm<'a, B: Backend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let sq = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// L2 norm of all gradients of `module`'s parameters taken together.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut v = SquaredNorm::<B::InnerBackend> { grads, total: None };
    module.visit(&mut v);
    match v.total {
        Some(t) => (t.into_scalar().elem::<f64>()).sqrt(),
        None => 0.0,
    }
}

/// Multiplies every gradient of `module`'s parameters by `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    factor: f64,
) {
    let mut v = Scale { grads, factor };
    module.visit(&mut v);
}

/// Global-norm clipping as `torch.nn.utils.clip_grad_norm_(params, max_norm)`:
/// if `total_norm > max_norm`, every gradient is multiplied by `max_norm / (total_norm + 1e-6)`.
///
/// Returns the norm before clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_grad_norm::<B, M>(module, grads);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        scale_grads::<B, M>(module, grads, coef);
    }
    norm
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::module::Module;
    use burn::tensor::TensorData;

    type B = Autodiff<Flex>;

    #[derive(Module, Debug)]
    struct Two<B: Backend> {
        a: Param<Tensor<B, 1>>,
        b: Param<Tensor<B, 2>>,
    }

    #[test]
    fn clipping_uses_the_global_norm() {
        let device = Default::default();
        let m = Two::<B> {
            a: Param::from_tensor(Tensor::from_data(TensorData::from([1.0f32, 2.0]), &device)),
            b: Param::from_tensor(Tensor::from_data(
                TensorData::from([[1.0f32, 1.0], [1.0, 1.0]]),
                &device,
            )),
        };
        // loss = 3*sum(a) + 4*b[0,0] -> grads a=[3,3], b=[[4,0],[0,0]]; global norm = sqrt(9+9+16)
        let loss = m.a.val().sum().mul_scalar(3.0)
            + m.b.val().slice([0..1, 0..1]).reshape([1]).mul_scalar(4.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &m);
        let norm = clip_grad_norm::<B, _>(&m, &mut grads, 1.0);
        assert!((norm - 34f64.sqrt()).abs() < 1e-5);
        let after = global_grad_norm::<B, _>(&m, &grads);
        assert!((after - 1.0).abs() < 1e-4, "{after}");
        // the direction is kept: ratio a/b = 3/4 across tensors (per-tensor clipping would break it)
        let ga = grads
            .get::<Flex, 1>(m.a.id)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let gb = grads
            .get::<Flex, 2>(m.b.id)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!((ga[0] / gb[0] - 0.75).abs() < 1e-5);
        // below the threshold nothing changes
        let n2 = clip_grad_norm::<B, _>(&m, &mut grads, 10.0);
        assert!((n2 - after).abs() < 1e-6);
    }
}
