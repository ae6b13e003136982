// A training-mode batch norm fused with the residual addition and ReLU that follow it,
// as one libtorch autograd function with its own backward pass, for the CPU:
//
//   y = relu?(batch_norm(x) (+ r))
//
// libtorch computes this as up to four operators, each a pass over the activations in
// both directions (statistics, normalization, addition, ReLU; ReLU's mask, then batch
// norm's two backward passes). Here the forward pass reads x twice (statistics, then
// normalize + add + ReLU) and the backward pass reads dy, y and x twice (the per-channel
// sums with ReLU's mask applied, then the input gradient); nothing else is written.
// The running statistics are updated as `torch.nn.BatchNorm2d` does (momentum, unbiased
// variance).
//
// Called from Rust (src/runtime/fused.rs) through `resnetc_bn_act`, on tch's tensors
// (`at::Tensor*`). float32 and float64, contiguous NCHW or channels-last; and bfloat16
// activations with float32 parameters, as bfloat16 autocast leaves them (libtorch's
// batch_norm takes the same mix): computed in float32, each result rounded once.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "bn_act_kernels.h"
#include "error.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

BnActLayout layout_of(const at::Tensor& x) {
  auto s = x.sizes();
  BnActLayout l{s[0], s[1], s[2] * s[3], false};
  l.channels_last = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  return l;
}

at::MemoryFormat format_of(const BnActLayout& l) {
  return l.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

// How many pieces to split `len` items of `width` values each into: one per thread,
// fewer when the work is small.
int64_t pieces(int64_t len, int64_t width) {
  const int64_t per_piece = 16384;
  int64_t by_size = std::max<int64_t>(1, len * width / per_piece);
  int64_t n = std::min<int64_t>(at::get_num_threads(), by_size);
  return std::max<int64_t>(1, std::min(n, len));
}

// Runs f(piece, begin, end) for `n` pieces of [0, len) on libtorch's threads.
template <typename F>
void split(int64_t len, int64_t n, const F& f) {
  at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) f(i, len * i / n, len * (i + 1) / n);
  });
}

// Per-channel sums over the whole tensor with `run(begin, end, s, q)` over a range: rows
// into per-piece partials added in piece order (channels-last), or channels directly.
template <typename Run>
void channel_sums(const BnActLayout& l, std::vector<double>& s, std::vector<double>& q,
                  const Run& run) {
  const int64_t C = l.c;
  s.assign(C, 0.0);
  q.assign(C, 0.0);
  if (l.channels_last) {
    const int64_t rows = l.n * l.hw;
    const int64_t n = pieces(rows, C);
    std::vector<double> part(n * 2 * C, 0.0);
    split(rows, n, [&](int64_t i, int64_t b, int64_t e) {
      run(b, e, &part[i * 2 * C], &part[i * 2 * C + C]);
    });
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < C; ++c) {
        s[c] += part[i * 2 * C + c];
        q[c] += part[i * 2 * C + C + c];
      }
  } else {
    split(C, pieces(C, l.n * l.hw), [&](int64_t, int64_t b, int64_t e) {
      run(b, e, s.data(), q.data());
    });
  }
}

// The items the elementwise passes range over: rows or planes.
int64_t items(const BnActLayout& l) { return l.channels_last ? l.n * l.hw : l.n * l.c; }
int64_t item_width(const BnActLayout& l) { return l.channels_last ? l.c : l.hw; }

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// For activations of libtorch's type Act: how the loops see them (Store), the type of the
// weight, bias and running statistics (Param), the type they are computed in (Compute).
template <typename Act>
struct Types {
  using Store = Act;
  using Param = Act;
  using Compute = Act;
};
template <>
struct Types<at::BFloat16> {
  using Store = Bf16;
  using Param = float;
  using Compute = float;
};
static_assert(sizeof(Bf16) == sizeof(at::BFloat16) && alignof(Bf16) == alignof(at::BFloat16));

template <typename Act>
const typename Types<Act>::Store* data(const at::Tensor& t) {
  return reinterpret_cast<const typename Types<Act>::Store*>(t.const_data_ptr<Act>());
}
template <typename Act>
typename Types<Act>::Store* mut_data(at::Tensor& t) {
  return reinterpret_cast<typename Types<Act>::Store*>(t.data_ptr<Act>());
}

// The parameters' type for activations of type `t`.
at::ScalarType param_type(at::ScalarType t) { return t == at::kBFloat16 ? at::kFloat : t; }

template <typename Act>
at::Tensor forward_impl(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& res,
                        const at::Tensor& w, const at::Tensor& b, const at::Tensor& rm,
                        const at::Tensor& rv, double momentum, double eps, bool relu) {
  const BnActLayout l = layout_of(x);
  const int64_t C = l.c, M = l.n * l.hw;
  TORCH_CHECK(M > 1, "batch norm in training needs more than 1 value per channel, got ",
              x.sizes());
  using T = typename Types<Act>::Compute;
  using P = typename Types<Act>::Param;
  const auto* xp = data<Act>(x);
  // Each channel's first value, subtracted before summing squares.
  std::vector<T> k(C);
  const Act* xa = x.const_data_ptr<Act>();
  for (int64_t c = 0; c < C; ++c) k[c] = T(l.channels_last ? xa[c] : xa[c * l.hw]);
  std::vector<double> s, q;
  channel_sums(l, s, q, [&](int64_t b, int64_t e, double* ps, double* pq) {
    bn_act_stats(l, xp, b, e, k.data(), ps, pq);
  });
  if constexpr (std::is_same_v<T, double>) {
    // float64 runs check other runs (and libtorch): a second pass around the mean makes
    // the variance as exact as libtorch's two-pass one.
    for (int64_t c = 0; c < C; ++c) k[c] = T(double(k[c]) + s[c] / M);
    channel_sums(l, s, q, [&](int64_t b, int64_t e, double* ps, double* pq) {
      bn_act_stats(l, xp, b, e, k.data(), ps, pq);
    });
  }
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mean = at::empty({C}, opts), invstd = at::empty({C}, opts);
  double* mp = mean.data_ptr<double>();
  double* ip = invstd.data_ptr<double>();
  std::vector<double> var(C), scale(C), shift(C);
  const P* wp = w.const_data_ptr<P>();
  const P* bp = b.const_data_ptr<P>();
  for (int64_t c = 0; c < C; ++c) {
    const double d = s[c] / M;
    mp[c] = double(k[c]) + d;
    var[c] = std::max(q[c] / M - d * d, 0.0);
    ip[c] = 1.0 / std::sqrt(var[c] + eps);
    scale[c] = double(wp[c]) * ip[c];
    shift[c] = double(bp[c]) - mp[c] * scale[c];
  }
  const std::vector<T> scale_t = cast<T>(scale), shift_t = cast<T>(shift);
  at::Tensor y = at::empty_like(x, format_of(l));
  const bool has_res = res.numel() > 0;
  const auto* rp = has_res ? data<Act>(res) : nullptr;
  auto* yp = mut_data<Act>(y);
  split(items(l), pieces(items(l), item_width(l)), [&](int64_t, int64_t b, int64_t e) {
    bn_act_forward(l, xp, rp, yp, b, e, scale_t.data(), shift_t.data(), relu);
  });
  // torch.nn.BatchNorm2d's update: the unbiased variance goes into the running one.
  if (rm.numel() > 0) {
    P* p = rm.data_ptr<P>();
    for (int64_t c = 0; c < C; ++c) p[c] = P((1.0 - momentum) * double(p[c]) + momentum * mp[c]);
  }
  if (rv.numel() > 0) {
    P* p = rv.data_ptr<P>();
    const double unbias = double(M) / double(M - 1);
    for (int64_t c = 0; c < C; ++c)
      p[c] = P((1.0 - momentum) * double(p[c]) + momentum * var[c] * unbias);
  }
  ctx->save_for_backward({x, relu ? y : at::empty({0}, x.options()), w, mean, invstd});
  ctx->saved_data["relu"] = relu;
  ctx->saved_data["residual"] = has_res;
  return y;
}

template <typename Act>
variable_list backward_impl(AutogradContext* ctx, const at::Tensor& grad) {
  using T = typename Types<Act>::Compute;
  using P = typename Types<Act>::Param;
  auto saved = ctx->get_saved_variables();
  const at::Tensor &x = saved[0], &y = saved[1], &w = saved[2], &mean = saved[3],
                   &invstd = saved[4];
  const bool relu = ctx->saved_data["relu"].toBool();
  const bool residual = ctx->saved_data["residual"].toBool();
  const BnActLayout l = layout_of(x);
  const int64_t C = l.c, M = l.n * l.hw;
  const at::Tensor dy = grad.to(x.scalar_type()).contiguous(format_of(l));
  const auto* dyp = data<Act>(dy);
  const auto* yp = relu ? data<Act>(y) : nullptr;
  const auto* xp = data<Act>(x);
  const double* mp = mean.const_data_ptr<double>();
  const double* ip = invstd.const_data_ptr<double>();
  const std::vector<T> mean_t(mp, mp + C);
  // The residual's gradient is ReLU's masked gradient; written by the sums pass.
  const bool want_res = residual && ctx->needs_input_grad(1);
  at::Tensor g_out = want_res && relu ? at::empty_like(x, format_of(l)) : at::Tensor();
  auto* gp = g_out.defined() ? mut_data<Act>(g_out) : nullptr;
  std::vector<double> sg, sgx;
  channel_sums(l, sg, sgx, [&](int64_t b, int64_t e, double* a, double* bb) {
    bn_act_backward_sums(l, dyp, yp, xp, gp, b, e, mean_t.data(), a, bb, relu);
  });
  auto topts = w.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor dw = at::empty({C}, topts), db = at::empty({C}, topts);
  P* dwp = dw.data_ptr<P>();
  P* dbp = db.data_ptr<P>();
  const P* wp = w.const_data_ptr<P>();
  std::vector<double> A(C), B(C), Cc(C);
  for (int64_t c = 0; c < C; ++c) {
    dwp[c] = P(sgx[c] * ip[c]);
    dbp[c] = P(sg[c]);
    const double a = double(wp[c]) * ip[c];
    const double k1 = sg[c] / M, k2 = ip[c] * ip[c] * sgx[c] / M;
    A[c] = a;
    B[c] = -a * k2;
    Cc[c] = -a * k1;
  }
  at::Tensor dx;
  if (ctx->needs_input_grad(0)) {
    const std::vector<T> At = cast<T>(A), Bt = cast<T>(B), Ct = cast<T>(Cc);
    dx = at::empty_like(x, format_of(l));
    auto* dxp = mut_data<Act>(dx);
    // With the masked gradient written out, read it rather than dy and y again.
    const auto* gin = gp ? gp : dyp;
    const auto* yin = gp ? nullptr : yp;
    const bool mask = relu && !gp;
    split(items(l), pieces(items(l), item_width(l)), [&](int64_t, int64_t b, int64_t e) {
      bn_act_backward_input(l, gin, yin, xp, dxp, b, e, mean_t.data(), At.data(), Bt.data(),
                            Ct.data(), mask);
    });
  }
  at::Tensor dres = want_res ? (relu ? g_out : dy) : at::Tensor();
  // One gradient per argument of forward (undefined for the buffers and the scalars).
  return {dx, dres, dw, db, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

struct BnAct : public torch::autograd::Function<BnAct> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor res, at::Tensor w,
                            at::Tensor b, at::Tensor rm, at::Tensor rv, double momentum,
                            double eps, bool relu) {
    switch (x.scalar_type()) {
      case at::kDouble:
        return forward_impl<double>(ctx, x, res, w, b, rm, rv, momentum, eps, relu);
      case at::kBFloat16:
        return forward_impl<at::BFloat16>(ctx, x, res, w, b, rm, rv, momentum, eps, relu);
      default:
        return forward_impl<float>(ctx, x, res, w, b, rm, rv, momentum, eps, relu);
    }
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // The saved input's type: the gradient is brought to it.
    switch (ctx->get_saved_variables()[0].scalar_type()) {
      case at::kDouble:
        return backward_impl<double>(ctx, grads[0]);
      case at::kBFloat16:
        return backward_impl<at::BFloat16>(ctx, grads[0]);
      default:
        return backward_impl<float>(ctx, grads[0]);
    }
  }
};

void check_param(const at::Tensor& t, const at::Tensor& x, const char* what) {
  TORCH_CHECK(t.defined() && t.dim() == 1 && t.size(0) == x.size(1) && t.is_contiguous() &&
                  t.scalar_type() == param_type(x.scalar_type()) && t.device() == x.device(),
              "fused batch norm: ", what, " must be a contiguous vector of ", x.size(1), " ",
              param_type(x.scalar_type()), " values on ", x.device());
}

}  // namespace

// y = relu?(batch_norm(x) (+ res)) in training mode; `res`, `running_mean` and
// `running_var` may be null. With `channels_last`, x is first put in that order if it is
// not already (so is y). On success stores a new tensor in `*out` (owned by the
// caller, freed as tch frees its tensors) and returns null; otherwise returns the error
// message, valid until the next call on this thread.
extern "C" const char* resnetc_bn_act(const at::Tensor* x, const at::Tensor* res,
                                      const at::Tensor* weight, const at::Tensor* bias,
                                      const at::Tensor* running_mean,
                                      const at::Tensor* running_var, double momentum,
                                      double eps, int relu, int channels_last,
                                      at::Tensor** out) {
  return resnetc_guarded([&] {
    TORCH_CHECK(x->dim() == 4 && x->device().is_cpu() &&
                    (x->scalar_type() == at::kFloat || x->scalar_type() == at::kDouble ||
                     x->scalar_type() == at::kBFloat16),
                "fused batch norm: the input must be a 4-d float32, float64 or bfloat16 CPU "
                "tensor, got ",
                x->sizes(), " ", x->scalar_type(), " on ", x->device());
    // A 1-channel stem's convolution leaves its output in NCHW order even when the
    // network runs channels-last; reordering it here keeps the rest of the pass (and its
    // gradients) in one order.
    const at::Tensor xc = x->contiguous(channels_last ? at::MemoryFormat::ChannelsLast
                                                      : format_of(layout_of(*x)));
    const BnActLayout l = layout_of(xc);
    // Autograd functions take no undefined tensors: an absent one is empty.
    const at::Tensor none = at::empty({0}, x->options());
    at::Tensor r = none;
    if (res) {
      TORCH_CHECK(res->sizes() == x->sizes() && res->scalar_type() == x->scalar_type() &&
                      res->device() == x->device(),
                  "fused batch norm: the residual ", res->sizes(), " ", res->scalar_type(),
                  " does not match the input ", x->sizes(), " ", x->scalar_type());
      r = res->contiguous(format_of(l));
    }
    check_param(*weight, xc, "the weight");
    check_param(*bias, xc, "the bias");
    at::Tensor rm = running_mean ? *running_mean : none;
    at::Tensor rv = running_var ? *running_var : none;
    if (running_mean) check_param(rm, xc, "the running mean");
    if (running_var) check_param(rv, xc, "the running variance");
    at::Tensor y = BnAct::apply(xc, r, *weight, *bias, rm, rv, momentum, eps, relu != 0);
    *out = new at::Tensor(std::move(y));
  });
}
