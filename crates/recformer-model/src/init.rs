//! HF `_init_weights` helpers: normal(0, `initializer_range`) weights and zero biases.

use burn::module::{Initializer, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor};

/// `Initializer::Normal { mean: 0, std }`.
pub(crate) fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

/// A `Linear` (`d_input -> d_output`) with normal weights and, if `bias`, a zero bias.
pub(crate) fn linear<B: Backend>(
    d_input: usize,
    d_output: usize,
    bias: bool,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    let mut layer = LinearConfig::new(d_input, d_output)
        .with_bias(bias)
        .with_initializer(normal(std))
        .init(device);
    if bias {
        layer.bias = Some(Param::from_tensor(Tensor::zeros([d_output], device)));
    }
    layer
}

/// Forces every lazily initialised parameter. Burn params are lazy and a clone of an
/// uninitialised param draws its own values, so `model.clone()` of a fresh random model would
/// otherwise give a *different* model. The default `map_float` consumes (initialises) each param.
struct Materialize;

impl<B: Backend> burn::module::ModuleMapper<B> for Materialize {}

/// Initialises all parameters of `module` now (see [`Materialize`]).
pub(crate) fn materialize<B: Backend, M: burn::module::Module<B>>(module: M) -> M {
    module.map(&mut Materialize)
}
