#include "core/int8_matrix.h"

#include <algorithm>
#include <cmath>

#include "core/avx2.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace kvrag {
namespace {

void check_linear_shapes(ConstView x, const Int8Matrix& w, View out) {
  KVRAG_CHECK(x.cols == w.cols && out.rows == x.rows && out.cols == w.rows, kInternal,
              "int8 linear: x [", x.rows, ", ", x.cols, "] · w [", w.rows, ", ", w.cols,
              "]ᵀ into [", out.rows, ", ", out.cols, "]");
  KVRAG_CHECK(w.cols <= kMaxInt8Cols, kInternal, "int8 linear: rows of ", w.cols,
              " values overflow int32 sums (at most ", kMaxInt8Cols, ")");
}

void portable_dots(const int8_t* w, const int8_t* x, int64_t x_stride, int64_t x_rows, int64_t cols,
                   int32_t* out) {
  for (int64_t r = 0; r < x_rows; ++r) {
    const int8_t* xr = x + r * x_stride;
    int32_t sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += int32_t(w[j]) * int32_t(xr[j]);
    out[r] = sum;
  }
}

constexpr Int8Kernels kPortable{"portable", portable_dots};

#if defined(__x86_64__)

// R activation rows against one weight row, 32 values a step: |w| as
// unsigned bytes times x with w's sign moved onto it (maddubs multiplies
// unsigned by signed) gives the products w·x, summed in pairs to int16 —
// at most 2 · 127 · 127 < 2^15, so never saturated — then in fours to int32.
template <int R>
KVRAG_AVX2 void avx2_dots_block(const int8_t* w, const int8_t* x, int64_t x_stride, int64_t cols,
                                int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
  int64_t j = 0;
  for (; j + 32 <= cols; j += 32) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j));
    const __m256i w_abs = _mm256_sign_epi8(wv, wv);
    for (int r = 0; r < R; ++r) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + r * x_stride + j));
      const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(xv, wv));
      acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(pairs, ones));
    }
  }
  for (int r = 0; r < R; ++r) {
    int32_t sum = horizontal_sum(acc[r]);
    for (int64_t t = j; t < cols; ++t) sum += int32_t(w[t]) * int32_t(x[r * x_stride + t]);
    out[r] = sum;
  }
}

// Four activation rows at a time share each load of the weight row.
KVRAG_AVX2 void avx2_dots(const int8_t* w, const int8_t* x, int64_t x_stride, int64_t x_rows,
                          int64_t cols, int32_t* out) {
  int64_t r = 0;
  for (; r + 4 <= x_rows; r += 4) avx2_dots_block<4>(w, x + r * x_stride, x_stride, cols, out + r);
  switch (x_rows - r) {
    case 3:
      return avx2_dots_block<3>(w, x + r * x_stride, x_stride, cols, out + r);
    case 2:
      return avx2_dots_block<2>(w, x + r * x_stride, x_stride, cols, out + r);
    case 1:
      return avx2_dots_block<1>(w, x + r * x_stride, x_stride, cols, out + r);
  }
}

constexpr Int8Kernels kAvx2{"avx2", avx2_dots};

#endif

// Weight rows one thread takes at the least: below this, waking threads
// costs more than the rows' share of reading the matrix.
constexpr int64_t kDirectGrainRows = 64;
// Weight rows dequantised per sgemm call (6 MB of float32 at T5-base's 768
// columns). Few calls, because each packs x anew: 256 x rows through
// T5-base's gated wi (6144, 768) took 75 ms in tiles of 256 rows, 51 ms in
// tiles of 2048, 49 ms as f32 sgemm (BM_LinearInt8Dequantized, loaded machine).
constexpr int64_t kDequantizedTileRows = 2048;

}  // namespace

float quantize_row(const float* x, int64_t cols, int8_t* q) {
  float max_abs = 0.0f;
  for (int64_t j = 0; j < cols; ++j) max_abs = std::max(max_abs, std::fabs(x[j]));
  if (max_abs == 0.0f) {
    std::fill(q, q + cols, int8_t{0});
    return 0.0f;
  }
  const float scale = max_abs / 127.0f;
  const float inverse = 1.0f / scale;
  for (int64_t j = 0; j < cols; ++j) {
    // |x| / scale ≤ 127 up to rounding; the clamp keeps the kernels'
    // precondition |q| ≤ 127 whatever the rounding.
    q[j] = static_cast<int8_t>(std::clamp(std::nearbyint(x[j] * inverse), -127.0f, 127.0f));
  }
  return scale;
}

Int8Matrix quantize_int8(ConstView w) {
  Int8Matrix m;
  m.rows = w.rows;
  m.cols = w.cols;
  m.q.resize(static_cast<size_t>(w.rows * w.cols));
  m.scales.resize(static_cast<size_t>(w.rows));
  for (int64_t i = 0; i < w.rows; ++i) {
    m.scales[static_cast<size_t>(i)] = quantize_row(w.row(i), w.cols, m.q.data() + i * w.cols);
  }
  return m;
}

void dequantize_rows(const Int8Matrix& m, int64_t begin, View out) {
  KVRAG_CHECK(begin >= 0 && begin + out.rows <= m.rows && out.cols == m.cols, kInternal,
              "dequantize_rows: rows [", begin, ", ", begin + out.rows, ") of [", m.rows, ", ",
              m.cols, "] into [", out.rows, ", ", out.cols, "]");
  for (int64_t i = 0; i < out.rows; ++i) {
    const int8_t* q = m.row(begin + i);
    const float scale = m.scales[static_cast<size_t>(begin + i)];
    float* o = out.row(i);
    for (int64_t j = 0; j < m.cols; ++j) o[j] = static_cast<float>(q[j]) * scale;
  }
}

const Int8Kernels& portable_int8_kernels() { return kPortable; }

const Int8Kernels* avx2_int8_kernels() {
#if defined(__x86_64__)
  return cpu_has_avx2() ? &kAvx2 : nullptr;
#else
  return nullptr;
#endif
}

const Int8Kernels& int8_kernels() {
  static const Int8Kernels& best = avx2_int8_kernels() ? *avx2_int8_kernels() : kPortable;
  return best;
}

void linear_int8_direct(ConstView x, const Int8Matrix& w, View out, bool accumulate,
                        const Int8Kernels& kernels) {
  check_linear_shapes(x, w, out);
  const int64_t n = x.rows;
  const int64_t cols = w.cols;
  std::vector<int8_t> xq(static_cast<size_t>(n * cols));
  std::vector<float> x_scales(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    x_scales[static_cast<size_t>(r)] = quantize_row(x.row(r), cols, xq.data() + r * cols);
  }
  parallel_for(w.rows, kDirectGrainRows, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> sums(static_cast<size_t>(n));
    for (int64_t o = begin; o < end; ++o) {
      kernels.dots(w.row(o), xq.data(), cols, n, cols, sums.data());
      const float w_scale = w.scales[static_cast<size_t>(o)];
      for (int64_t r = 0; r < n; ++r) {
        const float value = static_cast<float>(sums[static_cast<size_t>(r)]) *
                            (w_scale * x_scales[static_cast<size_t>(r)]);
        float& y = out.row(r)[o];
        y = accumulate ? y + value : value;
      }
    }
  });
}

void linear_int8_dequantized(ConstView x, const Int8Matrix& w, View out, bool accumulate) {
  check_linear_shapes(x, w, out);
  Tensor tile(std::min(kDequantizedTileRows, w.rows), w.cols);
  for (int64_t begin = 0; begin < w.rows; begin += kDequantizedTileRows) {
    const int64_t count = std::min(kDequantizedTileRows, w.rows - begin);
    const View tile_rows = tile.view().rows_slice(0, count);
    dequantize_rows(w, begin, tile_rows);
    gemm(x, false, tile_rows, true, out.cols_slice(begin, count), 1.0f, accumulate ? 1.0f : 0.0f);
  }
}

void linear(ConstView x, const Int8Matrix& w, View out, bool accumulate) {
  if (x.rows <= kInt8DirectMaxRows) {
    linear_int8_direct(x, w, out, accumulate);
  } else {
    linear_int8_dequantized(x, w, out, accumulate);
  }
}

}  // namespace kvrag
