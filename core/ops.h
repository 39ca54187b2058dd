// Math kernels over row-major float32 views. Each op writes into a
// caller-allocated output and checks shapes on entry (Error kInternal: a shape
// mismatch here is a bug in the caller, not bad user input).
#pragma once

#include "core/tensor.h"

namespace kvrag {

// c = alpha * op(a) · op(b) + beta * c through OpenBLAS (sgemv for one row),
// where op(x) is x or xᵀ; a large product is split by columns of c over
// compute_threads(). a: [m, k] (or [k, m] if trans_a), b: [k, n] (or [n, k] if
// trans_b), c: [m, n]. Views may be strided (ld > cols).
void gemm(ConstView a, bool trans_a, ConstView b, bool trans_b, View c, float alpha = 1.0f,
          float beta = 0.0f);

// v rounded to the nearest integer, ties to even (std::nearbyint's result
// in the default rounding mode) for |v| < 2^22: adding and subtracting
// 1.5 · 2^23 leaves only the integer part's bits, in arithmetic the
// compiler vectorises, where nearbyint is a library call per value.
inline float round_to_nearest(float v) {
  constexpr float kRoundingMagic = 12582912.0f;  // 1.5 · 2^23
  return (v + kRoundingMagic) - kRoundingMagic;
}

// T5 layer norm: out = weight ⊙ x / sqrt(mean(x²) + eps), per row, no mean
// subtraction and no bias. x, out: [n, d]; weight: [1, d]. out may alias x.
void rms_norm(ConstView x, ConstView weight, float eps, View out);

// Numerically stable softmax of each row, in place.
void softmax_rows(View x);

// In-place activations.
void relu(View x);
// gelu_tanh(x) = 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))), Hugging
// Face's "gelu_new"; not the erf form.
void gelu_tanh(View x);
// gate = gelu_tanh(gate) ⊙ up: the gated-GELU FFN of T5 v1.1. Same shapes.
void gated_gelu(View gate, ConstView up);

// y += x, elementwise over equal shapes.
void add_inplace(View y, ConstView x);

}  // namespace kvrag
