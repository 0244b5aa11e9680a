//! recformer-model
