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

#include <cstdint>

#include "bn_act_kernels.h"

namespace {

// Rows summed in T before the sums are added into the double totals: short enough for
// float's precision, long enough that the totals are rarely touched.
constexpr int64_t kBlock = 64;
// Widest channel count whose block accumulators live on the stack; wider ones go through
// the double totals directly.
constexpr int64_t kMaxStackC = 2048;

// Sums of (x - k) and (x - k)^2 per channel over rows [r0, r1) of a channels-last tensor;
// k (one value per channel) keeps the sums well conditioned.
template <typename T>
void stats_rows(const T* __restrict__ x, int64_t r0, int64_t r1, int64_t C,
                const T* __restrict__ k, double* __restrict__ s, double* __restrict__ q) {
  T bs[kMaxStackC], bq[kMaxStackC];
  if (C > kMaxStackC) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < C; ++c) {
        double d = double(x[r * C + c] - k[c]);
        s[c] += d;
        q[c] += d * d;
      }
    return;
  }
  for (int64_t b0 = r0; b0 < r1; b0 += kBlock) {
    const int64_t b1 = b0 + kBlock < r1 ? b0 + kBlock : r1;
    for (int64_t c = 0; c < C; ++c) bs[c] = bq[c] = T(0);
    for (int64_t r = b0; r < b1; ++r) {
      const T* __restrict__ row = x + r * C;
#pragma GCC ivdep
      for (int64_t c = 0; c < C; ++c) {
        T d = row[c] - k[c];
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

// The same for channels [c0, c1) of a contiguous NCHW tensor; s and q are indexed by
// channel.
template <typename T>
void stats_planes(const T* __restrict__ x, int64_t N, int64_t C, int64_t HW, int64_t c0,
                  int64_t c1, const T* __restrict__ k, double* __restrict__ s,
                  double* __restrict__ q) {
  for (int64_t c = c0; c < c1; ++c) {
    double sc = 0, qc = 0;
    const T kc = k[c];
    for (int64_t n = 0; n < N; ++n) {
      const T* __restrict__ p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        double d = double(p[i] - kc);
        sc += d;
        qc += d * d;
      }
    }
    s[c] = sc;
    q[c] = qc;
  }
}

template <typename T, bool RELU, bool RES>
void norm_rows(const T* __restrict__ x, const T* __restrict__ res, T* __restrict__ y, int64_t r0,
               int64_t r1, int64_t C, const T* __restrict__ scale, const T* __restrict__ shift) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* __restrict__ xr = x + r * C;
    const T* __restrict__ rr = RES ? res + r * C : nullptr;
    T* __restrict__ yr = y + r * C;
#pragma GCC ivdep
    for (int64_t c = 0; c < C; ++c) {
      T v = xr[c] * scale[c] + shift[c];
      if (RES) v += rr[c];
      if (RELU) v = v > T(0) ? v : T(0);
      yr[c] = v;
    }
  }
}

template <typename T, bool RELU, bool RES>
void norm_planes(const T* __restrict__ x, const T* __restrict__ res, T* __restrict__ y,
                 int64_t p0, int64_t p1, int64_t C, int64_t HW, const T* __restrict__ scale,
                 const T* __restrict__ shift) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t c = p % C;
    const T a = scale[c], b = shift[c];
    const T* __restrict__ xp = x + p * HW;
    const T* __restrict__ rp = RES ? res + p * HW : nullptr;
    T* __restrict__ yp = y + p * HW;
#pragma GCC ivdep
    for (int64_t i = 0; i < HW; ++i) {
      T v = xp[i] * a + b;
      if (RES) v += rp[i];
      if (RELU) v = v > T(0) ? v : T(0);
      yp[i] = v;
    }
  }
}

// Backward sums over rows [r0, r1): sg[c] += g, sgx[c] += g * (x - mean[c]); with G, g is
// also written out (the residual's gradient).
template <typename T, bool RELU, bool G>
void grad_sums_rows(const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ x,
                    T* __restrict__ g_out, int64_t r0, int64_t r1, int64_t C,
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
          T g = dy[o + c];
          if (RELU) g = y[o + c] > T(0) ? g : T(0);
          if (G) g_out[o + c] = g;
          bg[c] += g;
          bgx[c] += g * (x[o + c] - mean[c]);
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
          T g = dy[o];
          if (RELU) g = y[o] > T(0) ? g : T(0);
          if (G) g_out[o] = g;
          sg[c] += double(g);
          sgx[c] += double(g * (x[o] - mean[c]));
        }
    }
  }
}

template <typename T, bool RELU, bool G>
void grad_sums_planes(const T* __restrict__ dy, const T* __restrict__ y,
                      const T* __restrict__ x, T* __restrict__ g_out, int64_t N, int64_t C,
                      int64_t HW, int64_t c0, int64_t c1, const T* __restrict__ mean,
                      double* __restrict__ sg, double* __restrict__ sgx) {
  for (int64_t c = c0; c < c1; ++c) {
    double a = 0, b = 0;
    const T m = mean[c];
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        T g = dy[o + i];
        if (RELU) g = y[o + i] > T(0) ? g : T(0);
        if (G) g_out[o + i] = g;
        a += double(g);
        b += double(g * (x[o + i] - m));
      }
    }
    sg[c] = a;
    sgx[c] = b;
  }
}

// dx = A * g + B * (x - mean) + Cc, g from dy (and y's mask).
template <typename T, bool RELU>
void grad_input_rows(const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ x,
                     T* __restrict__ dx, int64_t r0, int64_t r1, int64_t C,
                     const T* __restrict__ mean, const T* __restrict__ A,
                     const T* __restrict__ B, const T* __restrict__ Cc) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* __restrict__ dyr = dy + r * C;
    const T* __restrict__ yr = RELU ? y + r * C : nullptr;
    const T* __restrict__ xr = x + r * C;
    T* __restrict__ dxr = dx + r * C;
#pragma GCC ivdep
    for (int64_t c = 0; c < C; ++c) {
      T g = dyr[c];
      if (RELU) g = yr[c] > T(0) ? g : T(0);
      dxr[c] = A[c] * g + B[c] * (xr[c] - mean[c]) + Cc[c];
    }
  }
}

template <typename T, bool RELU>
void grad_input_planes(const T* __restrict__ dy, const T* __restrict__ y,
                       const T* __restrict__ x, T* __restrict__ dx, int64_t p0, int64_t p1,
                       int64_t C, int64_t HW, const T* __restrict__ mean,
                       const T* __restrict__ A, const T* __restrict__ B,
                       const T* __restrict__ Cc) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t c = p % C;
    const T a = A[c], b = B[c], cc = Cc[c], m = mean[c];
    const int64_t o = p * HW;
#pragma GCC ivdep
    for (int64_t i = 0; i < HW; ++i) {
      T g = dy[o + i];
      if (RELU) g = y[o + i] > T(0) ? g : T(0);
      dx[o + i] = a * g + b * (x[o + i] - m) + cc;
    }
  }
}

template <typename T>
void forward_norm(const BnActLayout& l, const T* x, const T* res, T* y, int64_t i0, int64_t i1,
                  const T* scale, const T* shift, bool relu) {
  // One instantiation per (relu, residual) so that the inner loops carry no branches.
  if (l.channels_last) {
    if (relu && res) norm_rows<T, true, true>(x, res, y, i0, i1, l.c, scale, shift);
    else if (relu) norm_rows<T, true, false>(x, res, y, i0, i1, l.c, scale, shift);
    else if (res) norm_rows<T, false, true>(x, res, y, i0, i1, l.c, scale, shift);
    else norm_rows<T, false, false>(x, res, y, i0, i1, l.c, scale, shift);
  } else {
    if (relu && res) norm_planes<T, true, true>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
    else if (relu) norm_planes<T, true, false>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
    else if (res) norm_planes<T, false, true>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
    else norm_planes<T, false, false>(x, res, y, i0, i1, l.c, l.hw, scale, shift);
  }
}

template <typename T>
void backward_sums(const BnActLayout& l, const T* dy, const T* y, const T* x, T* g_out,
                   int64_t i0, int64_t i1, const T* mean, double* sg, double* sgx,
                   bool relu) {
  if (l.channels_last) {
    if (relu && g_out) grad_sums_rows<T, true, true>(dy, y, x, g_out, i0, i1, l.c, mean, sg, sgx);
    else if (relu) grad_sums_rows<T, true, false>(dy, y, x, g_out, i0, i1, l.c, mean, sg, sgx);
    else grad_sums_rows<T, false, false>(dy, y, x, g_out, i0, i1, l.c, mean, sg, sgx);
  } else {
    if (relu && g_out)
      grad_sums_planes<T, true, true>(dy, y, x, g_out, l.n, l.c, l.hw, i0, i1, mean, sg, sgx);
    else if (relu)
      grad_sums_planes<T, true, false>(dy, y, x, g_out, l.n, l.c, l.hw, i0, i1, mean, sg, sgx);
    else
      grad_sums_planes<T, false, false>(dy, y, x, g_out, l.n, l.c, l.hw, i0, i1, mean, sg, sgx);
  }
}

template <typename T>
void backward_input(const BnActLayout& l, const T* dy, const T* y, const T* x, T* dx,
                    int64_t i0, int64_t i1, const T* mean, const T* A, const T* B, const T* Cc,
                    bool relu) {
  if (l.channels_last) {
    if (relu) grad_input_rows<T, true>(dy, y, x, dx, i0, i1, l.c, mean, A, B, Cc);
    else grad_input_rows<T, false>(dy, y, x, dx, i0, i1, l.c, mean, A, B, Cc);
  } else {
    if (relu) grad_input_planes<T, true>(dy, y, x, dx, i0, i1, l.c, l.hw, mean, A, B, Cc);
    else grad_input_planes<T, false>(dy, y, x, dx, i0, i1, l.c, l.hw, mean, A, B, Cc);
  }
}

template <typename T>
void stats(const BnActLayout& l, const T* x, int64_t i0, int64_t i1, const T* k, double* s,
           double* q) {
  if (l.channels_last) stats_rows<T>(x, i0, i1, l.c, k, s, q);
  else stats_planes<T>(x, l.n, l.c, l.hw, i0, i1, k, s, q);
}

}  // namespace

// Explicit entry points for the two element types (bn_act_kernels.h).
#define RESNETC_BN_ACT_KERNELS(T)                                                          \
  void bn_act_stats(const BnActLayout& l, const T* x, int64_t i0, int64_t i1, const T* k,  \
                    double* s, double* q) {                                                \
    stats<T>(l, x, i0, i1, k, s, q);                                                       \
  }                                                                                        \
  void bn_act_forward(const BnActLayout& l, const T* x, const T* res, T* y, int64_t i0,    \
                      int64_t i1, const T* scale, const T* shift, bool relu) {             \
    forward_norm<T>(l, x, res, y, i0, i1, scale, shift, relu);                             \
  }                                                                                        \
  void bn_act_backward_sums(const BnActLayout& l, const T* dy, const T* y, const T* x,     \
                            T* g_out, int64_t i0, int64_t i1, const T* mean, double* sg,   \
                            double* sgx, bool relu) {                                      \
    backward_sums<T>(l, dy, y, x, g_out, i0, i1, mean, sg, sgx, relu);                     \
  }                                                                                        \
  void bn_act_backward_input(const BnActLayout& l, const T* dy, const T* y, const T* x,    \
                             T* dx, int64_t i0, int64_t i1, const T* mean, const T* A,     \
                             const T* B, const T* Cc, bool relu) {                         \
    backward_input<T>(l, dy, y, x, dx, i0, i1, mean, A, B, Cc, relu);                      \
  }

RESNETC_BN_ACT_KERNELS(float)
RESNETC_BN_ACT_KERNELS(double)
