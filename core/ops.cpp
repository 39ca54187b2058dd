#include "core/ops.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "core/avx2.h"
#include "core/error.h"
#include "core/parallel.h"

namespace kvrag {
namespace {

void check_same_shape(ConstView a, ConstView b, const char* op) {
  KVRAG_CHECK(a.rows == b.rows && a.cols == b.cols, kInternal, op, ": shape [", a.rows, ", ",
              a.cols, "] vs [", b.rows, ", ", b.cols, "]");
}

}  // namespace

namespace {

// Output columns one thread takes at the least.
constexpr int64_t kGemmSplitGrain = 32;

// c = alpha · op(a) · op(b) + beta · c on the calling thread, through OpenBLAS.
void gemm_serial(ConstView a, bool trans_a, ConstView b, bool trans_b, View c, float alpha,
                 float beta) {
  const int64_t m = c.rows;
  const int64_t n = c.cols;
  const int64_t k = trans_a ? a.rows : a.cols;
  if (m == 1) {
    // One output row: a query's attention scores in a greedy decoder step.
    // OpenBLAS's sgemm with m = 1 streamed a matrix about 3× slower than
    // sgemv (measured while weight products also came through here:
    // bench/micro_t5.cpp BM_Gemv against BM_Sgemv), so take the
    // matrix-vector path: cᵀ = op(b)ᵀ · op(a)ᵀ.
    const int incx = static_cast<int>(trans_a ? a.ld : 1);
    cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, static_cast<int>(b.rows),
                static_cast<int>(b.cols), alpha, b.data, static_cast<int>(b.ld), a.data, incx, beta,
                c.data, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a.data, static_cast<int>(a.ld), b.data,
              static_cast<int>(b.ld), beta, c.data, static_cast<int>(c.ld));
}

}  // namespace

void gemm(ConstView a, bool trans_a, ConstView b, bool trans_b, View c, float alpha, float beta) {
  const int64_t m = trans_a ? a.cols : a.rows;
  const int64_t k = trans_a ? a.rows : a.cols;
  const int64_t kb = trans_b ? b.cols : b.rows;
  const int64_t n = trans_b ? b.rows : b.cols;
  KVRAG_CHECK(k == kb && c.rows == m && c.cols == n, kInternal, "gemm: op(a) [", m, ", ", k,
              "] · op(b) [", kb, ", ", n, "] into [", c.rows, ", ", c.cols, "]");
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) c.row(i)[j] *= beta;
    }
    return;
  }
  // compute_threads() first, also for a product run alone: its first call
  // puts OpenBLAS on one thread (core/parallel.cpp).
  if (compute_threads() == 1 || m * n * k < kParallelMinMultiplyAdds) {
    gemm_serial(a, trans_a, b, trans_b, c, alpha, beta);
    return;
  }
  // Each thread computes a band of c's columns from the matching band of
  // op(b): rows of b when it is transposed (a weight matrix), else columns.
  parallel_for(n, kGemmSplitGrain, [&](int64_t begin, int64_t end) {
    const ConstView band =
        trans_b ? b.rows_slice(begin, end - begin) : b.cols_slice(begin, end - begin);
    gemm_serial(a, trans_a, band, trans_b, c.cols_slice(begin, end - begin), alpha, beta);
  });
}

void rms_norm(ConstView x, ConstView weight, float eps, View out) {
  check_same_shape(x, out, "rms_norm");
  KVRAG_CHECK(weight.rows == 1 && weight.cols == x.cols, kInternal, "rms_norm: weight [",
              weight.rows, ", ", weight.cols, "] for rows of ", x.cols);
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* xi = x.row(i);
    // Hugging Face accumulates the variance in float32; double here keeps
    // the sum exact enough and stays well inside the parity tolerance.
    double sum_sq = 0.0;
    for (int64_t j = 0; j < x.cols; ++j) sum_sq += double(xi[j]) * xi[j];
    const float inv = 1.0f / std::sqrt(float(sum_sq / double(x.cols)) + eps);
    float* oi = out.row(i);
    for (int64_t j = 0; j < x.cols; ++j) oi[j] = weight.data[j] * (xi[j] * inv);
  }
}

namespace {

// e^x in float arithmetic the compiler vectorises (std::exp is a library
// call per value: with tanh, a fifth of a T5 encoder's time): Cephes' expf,
// e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2, e^r by its
// degree-7 polynomial; a few ulp from std::exp (tests of softmax_rows and
// gelu_tanh against double). Below -87.3 it is 0 (e^x < 1.2e-38: a masked
// attention logit, -inf, weighs exactly nothing); above 88.3 it stays at
// e^88.3, where 2^n is still a normal float.
[[gnu::always_inline]] inline float exp_vectorisable(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 in two parts: n · kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  // Selects, not std::clamp's references: the loops that call this
  // vectorise only without control flow (and with -fno-trapping-math).
  const bool underflows = x < -87.3f;
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  const float n = round_to_nearest(x * kLog2e);
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t exponent = (static_cast<int32_t>(n) + 127) << 23;
  const float value = p * std::bit_cast<float>(exponent);
  return underflows ? 0.0f : value;
}

// Lanes the row reductions below keep apart: independent chains the compiler
// turns into one vector register (a single in-order chain of float additions
// cannot vectorise, and its latency bound a 3,000-position attention row).
constexpr int64_t kLanes = 8;

[[gnu::always_inline]] inline float row_max(const float* x, int64_t n) {
  float lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] = std::max(lanes[l], x[j + l]);
  }
  float max_value = *std::max_element(lanes, lanes + kLanes);
  for (; j < n; ++j) max_value = std::max(max_value, x[j]);
  return max_value;
}

// The sum in a fixed order (lane l takes x[l], x[l + 8], ...; the lanes are
// then added in order, then the tail): the same value on every run.
[[gnu::always_inline]] inline float row_sum(const float* x, int64_t n) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += x[j + l];
  }
  float sum = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; j < n; ++j) sum += x[j];
  return sum;
}

// One row's softmax, inlined into a portable and an AVX2 build of the loop
// below: the portable build's exponentials stay scalar, and an attention row
// over a 3,000-position memory is thousands of them per head and layer.
[[gnu::always_inline]] inline void softmax_row(float* x, int64_t n) {
  const float max_value = row_max(x, n);
  for (int64_t j = 0; j < n; ++j) x[j] = exp_vectorisable(x[j] - max_value);
  const float inv = 1.0f / row_sum(x, n);
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
}

void portable_softmax_rows(View x) {
  for (int64_t i = 0; i < x.rows; ++i) softmax_row(x.row(i), x.cols);
}

#if defined(__x86_64__)
KVRAG_AVX2 void avx2_softmax_rows(View x) {
  for (int64_t i = 0; i < x.rows; ++i) softmax_row(x.row(i), x.cols);
}
#endif

}  // namespace

void softmax_rows(View x) {
#if defined(__x86_64__)
  static const auto best = cpu_has_avx2() ? avx2_softmax_rows : portable_softmax_rows;
#else
  static const auto best = portable_softmax_rows;
#endif
  best(x);
}

void relu(View x) {
  for (int64_t i = 0; i < x.rows; ++i) {
    float* xi = x.row(i);
    for (int64_t j = 0; j < x.cols; ++j) xi[j] = std::max(xi[j], 0.0f);
  }
}

namespace {
// 0.5 · (1 + tanh(u)) = 1 / (1 + e^(-2u)): the same function through one
// vectorisable exponential, and without tanh's cancellation near -1.
inline float gelu_tanh_scalar(float v) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float u = kSqrt2OverPi * (v + 0.044715f * v * v * v);
  return v / (1.0f + exp_vectorisable(-2.0f * u));
}

// gate = gelu_tanh(gate), times up where it is given: the loops of
// gelu_tanh and gated_gelu, compiled as they are and, on x86, again for
// AVX2 (8 values a step, FMA). A question's encoding spent a serial stretch
// of every layer here, the other core waiting:
// BM_Encoder/t5-base-gated/16/cold, SSE2 / AVX2 alternated, medians of 6:
// bf16 6.66 / 5.69, 6.54 / 5.73, 7.01 / 6.34, 6.75 / 6.00 ms; f16 9.56 /
// 8.19, 8.85 / 8.40, 9.39 / 9.12, 9.32 / 8.28. AVX-512 gained nothing over
// AVX2 (three alternated pairs, bf16 6.00-6.09 / 6.01-6.24 ms).
inline void gelu_rows(View gate, const ConstView* up) {
  for (int64_t i = 0; i < gate.rows; ++i) {
    float* gi = gate.row(i);
    if (up == nullptr) {
      for (int64_t j = 0; j < gate.cols; ++j) gi[j] = gelu_tanh_scalar(gi[j]);
      continue;
    }
    const float* ui = up->row(i);
    for (int64_t j = 0; j < gate.cols; ++j) gi[j] = gelu_tanh_scalar(gi[j]) * ui[j];
  }
}

void portable_gelu_rows(View gate, const ConstView* up) { gelu_rows(gate, up); }

#if defined(__x86_64__)
KVRAG_AVX2 void avx2_gelu_rows(View gate, const ConstView* up) { gelu_rows(gate, up); }
#endif

void best_gelu_rows(View gate, const ConstView* up) {
#if defined(__x86_64__)
  static const auto best = cpu_has_avx2() ? avx2_gelu_rows : portable_gelu_rows;
#else
  static const auto best = portable_gelu_rows;
#endif
  best(gate, up);
}
}  // namespace

void gelu_tanh(View x) { best_gelu_rows(x, nullptr); }

void gated_gelu(View gate, ConstView up) {
  check_same_shape(gate, up, "gated_gelu");
  best_gelu_rows(gate, &up);
}

void add_inplace(View y, ConstView x) {
  check_same_shape(y, x, "add_inplace");
  for (int64_t i = 0; i < y.rows; ++i) {
    float* yi = y.row(i);
    const float* xi = x.row(i);
    for (int64_t j = 0; j < y.cols; ++j) yi[j] += xi[j];
  }
}

}  // namespace kvrag
