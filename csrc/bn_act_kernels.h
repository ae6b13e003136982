// The loops of the fused batch norm (+ add) (+ ReLU), in bn_act_kernels.cpp.
#pragma once
#include <cstdint>

// A 4-d tensor as the loops see it. Channels-last: n * hw rows of c values (a range is
// of rows). Contiguous NCHW: n * c planes of hw values (a range is of planes, except
// for the per-channel sums, whose range is of channels).
struct BnActLayout {
  int64_t n, c, hw;
  bool channels_last;
};

// A bfloat16 value's bits (layout-compatible with c10::BFloat16, which this file does not
// include).
struct Bf16 {
  uint16_t bits;
};

// Activations of type S; per-channel coefficients of T, the type S is computed in.
#define RESNETC_BN_ACT_DECLARE(S, T)                                                       \
  void bn_act_stats(const BnActLayout& l, const S* x, int64_t i0, int64_t i1, const T* k,  \
                    double* s, double* q);                                                 \
  void bn_act_forward(const BnActLayout& l, const S* x, const S* res, S* y, int64_t i0,    \
                      int64_t i1, const T* scale, const T* shift, bool relu);              \
  void bn_act_backward_sums(const BnActLayout& l, const S* dy, const S* y, const S* x,     \
                            S* g_out, int64_t i0, int64_t i1, const T* mean, double* sg,   \
                            double* sgx, bool relu);                                       \
  void bn_act_backward_input(const BnActLayout& l, const S* dy, const S* y, const S* x,    \
                             S* dx, int64_t i0, int64_t i1, const T* mean, const T* A,     \
                             const T* B, const T* Cc, bool relu);

RESNETC_BN_ACT_DECLARE(float, float)
RESNETC_BN_ACT_DECLARE(double, double)
RESNETC_BN_ACT_DECLARE(Bf16, float)
