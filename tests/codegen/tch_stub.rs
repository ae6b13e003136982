//! A stand-in for the `tch` crate with the items generated modules use, so that the
//! tests can compile generated modules (and run `rustdoc --test` on them) without
//! libtorch. Types and signatures follow tch 0.24 closely enough for name resolution and
//! type checking of the generated code; nothing here computes anything.
#![allow(dead_code, unused_variables, clippy::all)]

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Float,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
}

/// tch's `IntList`: what size and padding arguments accept.
pub trait IntList {}
impl<const N: usize> IntList for [i64; N] {}
impl IntList for &[i64] {}
impl IntList for Vec<i64> {}

/// tch's `IntListOption`: what `mean_dim` takes as its dimensions.
pub trait IntListOption {}
impl<T: IntList> IntListOption for T {}

/// tch's `Shape`: what `view` takes.
pub trait Shape {}
impl<const N: usize> Shape for [i64; N] {}
impl Shape for &[i64] {}

/// tch's `Scalar` conversions.
pub struct Scalar;
impl From<f64> for Scalar {
    fn from(_: f64) -> Scalar {
        Scalar
    }
}
impl From<i64> for Scalar {
    fn from(_: i64) -> Scalar {
        Scalar
    }
}

/// Element types of `Tensor::from_slice`.
pub trait Element {}
impl Element for f64 {}
impl Element for f32 {}
impl Element for i64 {}

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
    pub fn size(&self) -> Vec<i64> {
        Vec::new()
    }
    pub fn kind(&self) -> Kind {
        Kind::Float
    }
    pub fn device(&self) -> Device {
        Device::Cpu
    }
    pub fn from_slice<T: Element>(data: &[T]) -> Tensor {
        Tensor
    }
    pub fn empty(size: impl IntList, options: (Kind, Device)) -> Tensor {
        Tensor
    }
    pub fn to_kind(&self, kind: Kind) -> Tensor {
        Tensor
    }
    pub fn to_device(&self, device: Device) -> Tensor {
        Tensor
    }
    pub fn outer(&self, vec2: &Tensor) -> Tensor {
        Tensor
    }
    pub fn g_div_scalar<S: Into<Scalar>>(&self, other: S) -> Tensor {
        Tensor
    }
    pub fn g_mul(&self, other: &Tensor) -> Tensor {
        Tensor
    }
    pub fn reshape(&self, shape: impl IntList) -> Tensor {
        Tensor
    }
    pub fn view<T: Shape>(&self, s: T) -> Tensor {
        Tensor
    }
    pub fn repeat(&self, repeats: impl IntList) -> Tensor {
        Tensor
    }
    pub fn reflection_pad2d(&self, padding: impl IntList) -> Tensor {
        Tensor
    }
    pub fn conv2d<T: std::borrow::Borrow<Tensor>>(
        &self,
        weight: &Tensor,
        bias: Option<T>,
        stride: impl IntList,
        padding: impl IntList,
        dilation: impl IntList,
        groups: i64,
    ) -> Tensor {
        Tensor
    }
    pub fn mean_dim(
        &self,
        dim: impl IntListOption,
        keepdim: bool,
        dtype: impl Into<Option<Kind>>,
    ) -> Tensor {
        Tensor
    }
    pub fn sigmoid(&self) -> Tensor {
        Tensor
    }
    pub fn bernoulli_float_(&mut self, p: f64) -> Tensor {
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

    #[derive(Debug, Clone, Copy)]
    pub struct GroupNormConfig {
        pub cudnn_enabled: bool,
        pub eps: f64,
        pub affine: bool,
        pub ws_init: Init,
        pub bs_init: Init,
    }

    impl Default for GroupNormConfig {
        fn default() -> Self {
            GroupNormConfig {
                cudnn_enabled: true,
                eps: 1e-5,
                affine: true,
                ws_init: Init::Const(1.0),
                bs_init: Init::Const(0.0),
            }
        }
    }

    #[derive(Debug)]
    pub struct GroupNorm;
    #[derive(Debug)]
    pub struct Conv1D;

    impl Module for GroupNorm {
        fn forward(&self, xs: &Tensor) -> Tensor {
            Tensor
        }
    }
    impl Module for Conv1D {
        fn forward(&self, xs: &Tensor) -> Tensor {
            Tensor
        }
    }

    pub fn group_norm<'a, T: Borrow<Path<'a>>>(
        vs: T,
        num_groups: i64,
        num_channels: i64,
        config: GroupNormConfig,
    ) -> GroupNorm {
        GroupNorm
    }
    pub fn conv1d<'a, T: Borrow<Path<'a>>>(
        vs: T,
        c_in: i64,
        c_out: i64,
        ksize: i64,
        config: ConvConfig,
    ) -> Conv1D {
        Conv1D
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
