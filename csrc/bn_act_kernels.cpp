// The loops of resnetc's fused training-mode batch norm (+ residual addition) (+ ReLU):
// plain C++ on raw pointers, no libtorch header, compiled with AVX2 and FMA so that GCC
// vectorizes them (build.rs); the Rust side calls into them only on a CPU that has both.
// Each function covers a range of rows (channels-last: one row is one pixel's C values)
// or of planes (contiguous NCHW: one plane is one sample's one channel, HW values); the
// caller (bn_act.cpp) splits the work between libtorch's threads and combines the
// per-chunk sums in a fixed order, so results do not depend on timing.
//
// Forward:  y = relu?(scale[c] * x + shift[c] (+ r)), with scale = w * invstd and
//           shift = b - mean * scale from the batch statistics.
// Backward: g = relu ? (y > 0 ? dy : 0) : dy; sums of g and g * (x - mean) per channel;
//           dx = A[c] * g + B[c] * (x - mean[c]) + C[c] (coefficients from those sums).
//
// Activations are stored as S (float, double, or bfloat16 under autocast) and computed in
// T (S itself, or float for bfloat16): every value is widened on load and rounded once on
// store, as libtorch's own bfloat16 kernels do.

#include <cstdint>

#include "bn_act_kernels.h"

namespace {

// The type values of S are computed in.
template <typename S>
struct Compute {
  using type = S;
};
template <>
struct Compute<Bf16> {
  using type = float;
};

inline float ld(float v) { return v; }
inline double ld(double v) { return v; }
// bfloat16 is the upper half of a float32.
inline float ld(Bf16 v) { return __builtin_bit_cast(float, uint32_t(v.bits) << 16); }

inline void st(float* p, float v) { *p = v; }
inline void st(double* p, double v) { *p = v; }
// Rounded to the nearest, ties to even; NaN stays a (quiet) NaN. c10::BFloat16's rounding.
inline void st(Bf16* p, float v) {
  const uint32_t u = __builtin_bit_cast(uint32_t, v);
  const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  p->bits = v != v ? uint16_t(0x7FC0) : uint16_t(r);
}

// Rows summed in T before the sums are added into the double totals: short enough for
// float's precision, long enough that the totals are rarely touched.
constexpr int64_t kBlock = 64;
// Widest channel count whose block accumulators live on the stack; wider ones go through
// the double totals directly.
constexpr int64_t kMaxStackC = 2048;

// Sums of (x - k) and (x - k)^2 per channel over rows [r0, r1) of a channels-last tensor;
// k (one value per channel) keeps the sums well conditioned.
template <typename S, typename T = typename Compute<S>::type>
void stats_rows(const S* __restrict__ x, int64_t r0, int64_t r1, int64_t C,
                const T* __restrict__ k, double* __restrict__ s, double* __restrict__ q) {
  T bs[kMaxStackC], bq[kMaxStackC];
  if (C > kMaxStackC) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < C; ++c) {
        double d = double(ld(x[r * C + c]) - k[c]);
        s[c] += d;
        q[c] += d * d;
      }
    return;
  }
  for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < r1 ? b0 + kBlock : r1;
    for (int64_t c = 0; c < C; ++c) bs[c] = bq[c] = T(0);
    for (int64_t r = b0; r < b1; ++r) {
      const S* __restrict__ row = x + r * C;
#pragma GCC ivdep
      for (int64_t c = 0; c < C; ++c) {
        T d = ld(row[c]) - k[c];
        bs[c] += d;
        bq[c] += d * d;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      s[c] += double(bs[c]);
      q[c] += double(bq[c]);
    }
  }
}

// The same over channels [c0, c1) of a contiguous NCHW tensor, into s[c] and q[c].
template <typename S, typename T = typename Compute<S>::type>
void stats_planes(const S* __restrict__ x, int64_t N, int64_t C, int64_t HW, int64_t c0,
                  int64_t c1, const T* __restrict__ k, double* __restrict__ s,
                  double* __restrict__ q) {
  for (int64_t c = c0; c < c1; ++c) {
    double sc = 0, qc = 0;
    const T kc = k[c];
    for (int64_t n = 0; n < N; ++n) {
      const S* __restrict__ p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        double d = double(ld(p[i]) - kc);
        sc += d;
        qc += d * d;
      }
    }
    s[c] = sc;
    q[c] = qc;
  }
}

template <typename S, bool RELU, bool RES, typename T = typename Compute<S>::type>
void norm_rows(const S* __restrict__ x, const S* __restrict__ res, S* __restrict__ y, int64_t r0,
               int64_t r1, int64_t C, const T* __restrict__ scale, const T* __restrict__ shift) {
  for (int64_t r = r0; r < r1; ++r) {
    const S* __restrict__ xr = x + r * C;
    const S* __restrict__ rr = RES ? res + r * C : nullptr;
    S* __restrict__ yr = y + r * C;
#pragma GCC ivdep
    for (int64_t c = 0; c < C; ++c) {
      T v = ld(xr[c]) * scale[c] + shift[c];
      if (RES) v += ld(rr[c]);
      if (RELU) v = v > T(0) ? v : T(0);
      st(yr + c, v);
    }
  }
}

template <typename S, bool RELU, bool RES, typename T = typename Compute<S>::type>
void norm_planes(const S* __restrict__ x, const S* __restrict__ res, S* __restrict__ y,
                 int64_t p0, int64_t p1, int64_t C, int64_t HW, const T* __restrict__ scale,
                 const T* __restrict__ shift) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t c = p % C;
    const T a = scale[c], b = shift[c];
    const S* __restrict__ xp = x + p * HW;
    const S* __restrict__ rp = RES ? res + p * HW : nullptr;
    S* __restrict__ yp = y + p * HW;
#pragma GCC ivdep
    for (int64_t i = 0; i < HW; ++i) {
      T v = ld(xp[i]) * a + b;
      if (RES) v += ld(rp[i]);
      if (RELU) v = v > T(0) ? v : T(0);
      st(yp + i, v);
    }
  }
}

// Backward sums over rows [r0, r1): sg[c] += g, sgx[c] += g * (x - mean[c]); with G, g is
// also written out (the residual's gradient).
template <typename S, bool RELU, bool G, typename T = typename Compute<S>::type>
void grad_sums_rows(const S* __restrict__ dy, const S* __restrict__ y, const S* __restrict__ x,
                    S* __restrict__ g_out, int64_t r0, int64_t r1, int64_t C,
                    const T* __restrict__ mean, double* __restrict__ sg,
                    double* __restrict__ sgx) {
  T bg[kMaxStackC], bgx[kMaxStackC];
  const bool stack = C <= kMaxStackC;
  for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < r1 ? b0 + kBlock : r1;
    if (stack) {
      for (int64_t c = 0; c < C; ++c) bg[c] = bgx[c] = T(0);
      for (int64_t r = b0; r < b1; ++r) {
        const int64_t o = r * C;
#pragma GCC ivdep
        for (int64_t c = 0; c < C; ++c) {
          T g = ld(dy[o + c]);
          if (RELU) g = ld(y[o + c]) > T(0) ? g : T(0);
          if (G) st(g_out + o + c, g);
          bg[c] += g;
          bgx[c] += g * (ld(x[o + c]) - mean[c]);
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        sg[c] += double(bg[c]);
        sgx[c] += double(bgx[c]);
      }
    } else {
      for (int64_t r = b0; r < b1; ++r)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t o = r * C + c;
          T g = ld(dy[o]);
          if (RELU) g = ld(y[o]) > T(0) ? g : T(0);
          if (G) st(g_out + o, g);
          sg[c] += double(g);
          sgx[c] += double(g * (ld(x[o]) - mean[c]));
        }
    }
  }
}

template <typename S, bool RELU, bool G, typename T = typename Compute<S>::type>
void grad_sums_planes(const S* __restrict__ dy, const S* __restrict__ y,
                      const S* __restrict__ x, S* __restrict__ g_out, int64_t N, int64_t C,
                      int64_t HW, int64_t c0, int64_t c1, const T* __restrict__ mean,
                      double* __restrict__ sg, double* __restrict__ sgx) {
  for (int64_t c = c0; c < c1; ++c) {
    double a = 0, b = 0;
    const T m = mean[c];
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        T g = ld(dy[o + i]);
        if (RELU) g = ld(y[o + i]) > T(0) ? g : T(0);
        if (G) st(g_out + o + i, g);
        a += double(g);
        b += double(g * (ld(x[o + i]) - m));
      }
    }
    sg[c] = a;
    sgx[c] = b;
  }
}

// dx = A * g + B * (x - mean) + Cc, g from dy (and y's mask).
template <typename S, bool RELU, typename T = typename Compute<S>::type>
void grad_input_rows(const S* __restrict__ dy, const S* __restrict__ y, const S* __restrict__ x,
                     S* __restrict__ dx, int64_t r0, int64_t r1, int64_t C,
                     const T* __restrict__ mean, const T* __restrict__ A,
                     const T* __restrict__ B, const T* __restrict__ Cc) {
  for (int64_t r = r0; r < r1; ++r) {
    const S* __restrict__ dyr = dy + r * C;
    const S* __restrict__ yr = RELU ? y + r * C : nullptr;
    const S* __restrict__ xr = x + r * C;
    S* __restrict__ dxr = dx + r * C;
#pragma GCC ivdep
    for (int64_t c = 0; c < C; ++c) {
      T g = ld(dyr[c]);
      if (RELU) g = ld(yr[c]) > T(0) ? g : T(0);
      st(dxr + c, A[c] * g + B[c] * (ld(xr[c]) - mean[c]) + Cc[c]);
    }
  }
}

template <typename S, bool RELU, typename T = typename Compute<S>::type>
void grad_input_planes(const S* __restrict__ dy, const S* __restrict__ y,
                       const S* __restrict__ x, S* __restrict__ dx, int64_t p0, int64_t p1,
                       int64_t C, int64_t HW, const T* __restrict__ mean,
                       const T* __restrict__ A, const T* __restrict__ B,
                       const T* __restrict__ Cc) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t c = p % C;
    const T a = A[c], b = B[c], cc = Cc[c], m = mean[c];
    const int64_t o = p * HW;
#pragma GCC ivdep
    for (int64_t i = 0; i < HW; ++i) {
      T g = ld(dy[o + i]);
      if (RELU) g = ld(y[o + i]) > T(0) ? g : T(0);
      st(dx + o + i, a * g + b * (ld(x[o + i]) - m) + cc);
    }
  }
}

template <typename S, typename T>
void forward_norm(const BnActLayout& l, const S* x, const S* res, S* y, int64_t i0, int64_t i1,
                  const T* scale, const T* shift, bool relu) {
  // One instantiation per (relu, residual) so that the inner loops carry no branches.
  if (l.channels_last) {
    if (relu && res) norm_rows<S, true, true>(x, res, y, i0, i1, l.c, scale, shift);
    else if (relu) norm_rows<S, true, false>(x, res, y, i0, i1, l.c, scale, shift);
    else if (res) norm_rows<S, false, true>(x, res, y, i0, i1, l.c, scale, shift);
    else norm_rows<S, false, false>(x, res, y, i0, i1, l.c, scale, shift);
  } else {
    if (relu && res) norm_planes<S, true, true>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
    else if (relu) norm_planes<S, true, false>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
    else if (res) norm_planes<S, false, true>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
    else norm_planes<S, false, false>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
  }
}

template <typename S, typename T>
void backward_sums(const BnActLayout& l, const S* dy, const S* y, const S* x, S* g_out,
                   int64_t i0, int64_t i1, const T* mean, double* sg, double* sgx,
                   bool relu) {
  if (l.channels_last) {
    if (relu && g_out) grad_sums_rows<S, true, true>(dy, y, x, g_out, i0, i1, l.c, mean, sg, sgx);
    else if (relu) grad_sums_rows<S, true, false>(dy, y, x, g_out, i0, i1, l.c, mean, sg, sgx);
    else grad_sums_rows<S, false, false>(dy, y, x, g_out, i0, i1, l.c, mean, sg, sgx);
  } else {
    if (relu && g_out)
      grad_sums_planes<S, true, true>(dy, y, x, g_out, l.n, l.c, l.hw, i0, i1, mean, sg, sgx);
    else if (relu)
      grad_sums_planes<S, true, false>(dy, y, x, g_out, l.n, l.c, l.hw, i0, i1, mean, sg, sgx);
    else
      grad_sums_planes<S, false, false>(dy, y, x, g_out, l.n, l.c, l.hw, i0, i1, mean, sg, sgx);
  }
}

template <typename S, typename T>
void backward_input(const BnActLayout& l, const S* dy, const S* y, const S* x, S* dx,
                    int64_t i0, int64_t i1, const T* mean, const T* A, const T* B, const T* Cc,
                    bool relu) {
  if (l.channels_last) {
    if (relu) grad_input_rows<S, true>(dy, y, x, dx, i0, i1, l.c, mean, A, B, Cc);
    else grad_input_rows<S, false>(dy, y, x, dx, i0, i1, l.c, mean, A, B, Cc);
  } else {
    if (relu) grad_input_planes<S, true>(dy, y, x, dx, i0, i1, l.c, l.hw, mean, A, B, Cc);
    else grad_input_planes<S, false>(dy, y, x, dx, i0, i1, l.c, l.hw, mean, A, B, Cc);
  }
}

template <typename S, typename T>
void stats(const BnActLayout& l, const S* x, int64_t i0, int64_t i1, const T* k, double* s,
           double* q) {
  if (l.channels_last) stats_rows<S>(x, i0, i1, l.c, k, s, q);
  else stats_planes<S>(x, l.n, l.c, l.hw, i0, i1, k, s, q);
}

}  // namespace

// Explicit entry points for the three storage types (bn_act_kernels.h).
#define RESNETC_BN_ACT_KERNELS(S, T)                                                       \
  void bn_act_stats(const BnActLayout& l, const S* x, int64_t i0, int64_t i1, const T* k,  \
                    double* s, double* q) {                                                \
    stats<S, T>(l, x, i0, i1, k, s, q);                                                    \
  }                                                                                        \
  void bn_act_forward(const BnActLayout& l, const S* x, const S* res, S* y, int64_t i0,    \
                      int64_t i1, const T* scale, const T* shift, bool relu) {             \
    forward_norm<S, T>(l, x, res, y, i0, i1, scale, shift, relu);                          \
  }                                                                                        \
  void bn_act_backward_sums(const BnActLayout& l, const S* dy, const S* y, const S* x,     \
                            S* g_out, int64_t i0, int64_t i1, const T* mean, double* sg,   \
                            double* sgx, bool relu) {                                      \
    backward_sums<S, T>(l, dy, y, x, g_out, i0, i1, mean, sg, sgx, relu);                  \
  }                                                                                        \
  void bn_act_backward_input(const BnActLayout& l, const S* dy, const S* y, const S* x,    \
                             S* dx, int64_t i0, int64_t i1, const T* mean, const T* A,     \
                             const T* B, const T* Cc, bool relu) {                         \
    backward_input<S, T>(l, dy, y, x, dx, i0, i1, mean, A, B, Cc, relu);                   \
  }

RESNETC_BN_ACT_KERNELS(float, float)
RESNETC_BN_ACT_KERNELS(double, double)
RESNETC_BN_ACT_KERNELS(Bf16, float)
