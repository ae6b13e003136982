//! A stand-in for the `tch` crate with the items generated modules use, so that the
//! tests can compile generated modules (and run `rustdoc --test` on them) without
//! libtorch. Types and signatures follow tch 0.24 closely enough for name resolution and
//! type checking of the generated code; nothing here computes anything.
#![allow(dead_code, unused_variables, clippy::all)]

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Float,
}

#[derive(Debug)]
pub struct Tensor;

impl Tensor {
    pub fn apply<M: nn::Module>(&self, m: &M) -> Tensor {
        m.forward(self)
    }
    pub fn apply_t<M: nn::ModuleT>(&self, m: &M, train: bool) -> Tensor {
        m.forward_t(self, train)
    }
    pub fn relu(&self) -> Tensor {
        Tensor
    }
    pub fn slice(
        &self,
        dim: i64,
        start: impl Into<Option<i64>>,
        end: impl Into<Option<i64>>,
        step: i64,
    ) -> Tensor {
        Tensor
    }
    pub fn constant_pad_nd(&self, pad: impl AsRef<[i64]>) -> Tensor {
        Tensor
    }
    pub fn max_pool2d(
        &self,
        k: impl AsRef<[i64]>,
        s: impl AsRef<[i64]>,
        p: impl AsRef<[i64]>,
        d: impl AsRef<[i64]>,
        ceil: bool,
    ) -> Tensor {
        Tensor
    }
    pub fn avg_pool2d(
        &self,
        k: impl AsRef<[i64]>,
        s: impl AsRef<[i64]>,
        p: impl AsRef<[i64]>,
        ceil: bool,
        count_include_pad: bool,
        divisor: impl Into<Option<i64>>,
    ) -> Tensor {
        Tensor
    }
    pub fn adaptive_avg_pool2d(&self, out: impl AsRef<[i64]>) -> Tensor {
        Tensor
    }
    pub fn adaptive_max_pool2d(&self, out: impl AsRef<[i64]>) -> (Tensor, Tensor) {
        (Tensor, Tensor)
    }
    pub fn flatten(&self, start: i64, end: i64) -> Tensor {
        Tensor
    }
    pub fn dropout(&self, p: f64, train: bool) -> Tensor {
        Tensor
    }
    pub fn softmax(&self, dim: i64, kind: impl Into<Option<Kind>>) -> Tensor {
        Tensor
    }
    pub fn shallow_clone(&self) -> Tensor {
        Tensor
    }
}

impl std::ops::Add<Tensor> for Tensor {
    type Output = Tensor;
    fn add(self, rhs: Tensor) -> Tensor {
        Tensor
    }
}

impl std::ops::Add<&Tensor> for Tensor {
    type Output = Tensor;
    fn add(self, rhs: &Tensor) -> Tensor {
        Tensor
    }
}

pub mod nn {
    use super::Tensor;
    use std::borrow::Borrow;

    pub trait Module {
        fn forward(&self, xs: &Tensor) -> Tensor;
    }

    pub trait ModuleT {
        fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    }

    #[derive(Debug)]
    pub struct Path<'a>(std::marker::PhantomData<&'a ()>);

    impl<'a, T: ToString> std::ops::Div<T> for &Path<'a> {
        type Output = Path<'a>;
        fn div(self, rhs: T) -> Path<'a> {
            Path(std::marker::PhantomData)
        }
    }

    impl<'a, T: ToString> std::ops::Div<T> for Path<'a> {
        type Output = Path<'a>;
        fn div(self, rhs: T) -> Path<'a> {
            Path(std::marker::PhantomData)
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub enum Init {
        Const(f64),
        Randn { mean: f64, stdev: f64 },
        Uniform { lo: f64, up: f64 },
    }

    #[derive(Debug, Clone, Copy)]
    pub struct ConvConfig {
        pub stride: i64,
        pub padding: i64,
        pub dilation: i64,
        pub groups: i64,
        pub bias: bool,
        pub ws_init: Init,
        pub bs_init: Init,
    }

    impl Default for ConvConfig {
        fn default() -> Self {
            ConvConfig {
                stride: 1,
                padding: 0,
                dilation: 1,
                groups: 1,
                bias: true,
                ws_init: Init::Const(0.0),
                bs_init: Init::Const(0.0),
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub struct BatchNormConfig {
        pub cudnn_enabled: bool,
        pub eps: f64,
        pub momentum: f64,
        pub ws_init: Init,
        pub bs_init: Init,
    }

    impl Default for BatchNormConfig {
        fn default() -> Self {
            BatchNormConfig {
                cudnn_enabled: true,
                eps: 1e-5,
                momentum: 0.1,
                ws_init: Init::Const(1.0),
                bs_init: Init::Const(0.0),
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub struct LinearConfig {
        pub ws_init: Init,
        pub bs_init: Option<Init>,
        pub bias: bool,
    }

    #[derive(Debug)]
    pub struct Conv2D;
    #[derive(Debug)]
    pub struct BatchNorm;
    #[derive(Debug)]
    pub struct Linear;

    impl Module for Conv2D {
        fn forward(&self, xs: &Tensor) -> Tensor {
            Tensor
        }
    }
    impl Module for Linear {
        fn forward(&self, xs: &Tensor) -> Tensor {
            Tensor
        }
    }
    impl ModuleT for BatchNorm {
        fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
            Tensor
        }
    }

    pub fn conv2d<'a, T: Borrow<Path<'a>>>(
        vs: T,
        c_in: i64,
        c_out: i64,
        ksize: i64,
        config: ConvConfig,
    ) -> Conv2D {
        Conv2D
    }
    pub fn batch_norm2d<'a, T: Borrow<Path<'a>>>(
        vs: T,
        channels: i64,
        config: BatchNormConfig,
    ) -> BatchNorm {
        BatchNorm
    }
    pub fn linear<'a, T: Borrow<Path<'a>>>(
        vs: T,
        in_dim: i64,
        out_dim: i64,
        config: LinearConfig,
    ) -> Linear {
        Linear
    }
}
