#include "core/int8_matrix.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <utility>

#include "core/avx2.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/parallel.h"

// The OpenMP runtime Debian's oneDNN runs on (libgomp, linked by
// core/CMakeLists.txt). Its omp.h comes with GCC only, not with clang, so
// the one standard function used (onednn_sums) is declared here.
extern "C" void omp_set_num_threads(int threads);

namespace kvrag {
namespace {

void check_linear_shapes(ConstView x, const Int8Matrix& w, View out) {
  KVRAG_CHECK(x.cols == w.cols && out.rows == x.rows && out.cols == w.rows, kInternal,
              "int8 linear: x [", x.rows, ", ", x.cols, "] · w [", w.rows, ", ", w.cols,
              "]ᵀ into [", out.rows, ", ", out.cols, "]");
  KVRAG_CHECK(w.cols <= kMaxInt8Cols, kInternal, "int8 linear: rows of ", w.cols,
              " values overflow int32 sums (at most ", kMaxInt8Cols, ")");
}

void portable_dots(const int8_t* w, int64_t w_stride, int64_t w_rows, const int8_t* x,
                   int64_t x_stride, int64_t x_rows, int64_t cols, int32_t* out) {
  for (int64_t o = 0; o < w_rows; ++o) {
    const int8_t* wo = w + o * w_stride;
    for (int64_t r = 0; r < x_rows; ++r) {
      const int8_t* xr = x + r * x_stride;
      int32_t sum = 0;
      for (int64_t j = 0; j < cols; ++j) sum += int32_t(wo[j]) * int32_t(xr[j]);
      out[o * x_rows + r] = sum;
    }
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

// One weight row against every activation row, four activation rows at a
// time sharing each load of the weight row.
KVRAG_AVX2 void avx2_row_dots(const int8_t* w, const int8_t* x, int64_t x_stride, int64_t x_rows,
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

// How far ahead avx2_four_rows_dots asks for weight rows: four interleaved
// row streams alone were fetched too late (BM_Int8Gemv/65536/1024 2.56 ms
// without, 1.12 ms with; 1.30 ms a row at a time).
constexpr int64_t kPrefetchRows = 8;

// Four weight rows against one activation row (a decoder step's product),
// 32 values a step: four independent sums share each load of x, and the
// per-row work after the loop (the horizontal sum) is done for four at
// once. A row at a time, a T5-base-sized row (768 values, 24 steps) spent
// much of its time outside the loop: BM_Int8Gemv/6144/768 0.090 → 0.052 ms,
// /768/3072 0.037 → 0.030 ms (medians of 3, quiet machine).
KVRAG_AVX2 void avx2_four_rows_dots(const int8_t* w, int64_t w_stride, const int8_t* x,
                                    int64_t cols, int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
  int64_t j = 0;
  for (; j + 32 <= cols; j += 32) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
    if (j % 64 == 0) {
      for (int o = 0; o < 4; ++o) {
        _mm_prefetch(reinterpret_cast<const char*>(w + (kPrefetchRows + o) * w_stride + j),
                     _MM_HINT_T0);
      }
    }
    for (int o = 0; o < 4; ++o) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + o * w_stride + j));
      const __m256i pairs =
          _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
      acc[o] = _mm256_add_epi32(acc[o], _mm256_madd_epi16(pairs, ones));
    }
  }
  // Lane sums of the four accumulators in one vector: (s0, s1, s2, s3).
  const __m256i pair01 = _mm256_hadd_epi32(acc[0], acc[1]);
  const __m256i pair23 = _mm256_hadd_epi32(acc[2], acc[3]);
  const __m256i quad = _mm256_hadd_epi32(pair01, pair23);
  const __m128i sums =
      _mm_add_epi32(_mm256_castsi256_si128(quad), _mm256_extracti128_si256(quad, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), sums);
  for (int o = 0; o < 4; ++o) {
    for (int64_t t = j; t < cols; ++t) out[o] += int32_t(w[o * w_stride + t]) * int32_t(x[t]);
  }
}

KVRAG_AVX2 void avx2_dots(const int8_t* w, int64_t w_stride, int64_t w_rows, const int8_t* x,
                          int64_t x_stride, int64_t x_rows, int64_t cols, int32_t* out) {
  int64_t o = 0;
  if (x_rows == 1) {
    for (; o + 4 <= w_rows; o += 4)
      avx2_four_rows_dots(w + o * w_stride, w_stride, x, cols, out + o);
  }
  for (; o < w_rows; ++o)
    avx2_row_dots(w + o * w_stride, x, x_stride, x_rows, cols, out + o * x_rows);
}

constexpr Int8Kernels kAvx2{"avx2", avx2_dots};

// 128 · Σ w of W weight rows from their sums against ones, wrapped in
// uint32 as the products' sums wrap.
template <int W>
KVRAG_AVX512_VNNI void store_offsets(const __m512i (&w_sums)[W], uint32_t* offsets) {
#pragma GCC unroll 16
  for (int o = 0; o < W; ++o) {
    offsets[o] = 128u * static_cast<uint32_t>(_mm512_reduce_add_epi32(w_sums[o]));
  }
}

// W weight rows against R activation rows, 64 values a step, with VNNI's
// VPDPBUSD (unsigned bytes times signed bytes, four products summed into
// each int32 lane): x + 128 (its sign bit flipped) as the unsigned operand
// and w as the signed one, so Σ (x + 128) · w − 128 · Σ w, the second sum
// taken by the same instruction against ones. Both wrap in int32 alike,
// so the difference is the exact Σ x · w whenever that fits (cols ≤
// kMaxInt8Cols), the sums the other kernels compute. The W · R sums share
// each load, and the weight rows are asked for kPrefetchRows ahead: a
// question's 16 rows through T5-base's weights, which oneDNN's matmul read
// from memory at about 13 GB/s (the weights it packs per call come without
// prefetching), come in about 1.5 times as fast here. A tail of fewer than
// 64 values is read masked (zeros add nothing).
//
// With kOwnOffsets the block sums its weight rows itself (the only block
// of a product of at most four rows, a decoder step's); else `offsets`
// come from vnni_offsets.
template <int W, int R, bool kOwnOffsets>
KVRAG_AVX512_VNNI void vnni_dots_block(const int8_t* w, int64_t w_stride, const uint32_t* offsets,
                                       const int8_t* x, int64_t x_stride, int64_t x_rows,
                                       int64_t cols, int32_t* out) {
  __m512i acc[W][R];
  __m512i w_sums[W];
#pragma GCC unroll 16
  for (int o = 0; o < W; ++o) {
    w_sums[o] = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[o][r] = _mm512_setzero_si512();
  }
  const __m512i sign_bits = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t j = 0; j < cols; j += 64) {
    const __mmask64 valid = cols - j >= 64 ? ~__mmask64{0} : (__mmask64{1} << (cols - j)) - 1;
    // Masked-off bytes stay 0 in x + 128 too: 0 · w adds nothing.
    const __m512i flip = _mm512_maskz_mov_epi8(valid, sign_bits);
    __m512i wv[W];
#pragma GCC unroll 16
    for (int o = 0; o < W; ++o) {
      if constexpr (kOwnOffsets) {
        _mm_prefetch(reinterpret_cast<const char*>(w + (kPrefetchRows + o) * w_stride + j),
                     _MM_HINT_T0);
      }
      wv[o] = _mm512_maskz_loadu_epi8(valid, w + o * w_stride + j);
      if constexpr (kOwnOffsets) w_sums[o] = _mm512_dpbusd_epi32(w_sums[o], ones, wv[o]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i x_offset =
          _mm512_xor_si512(_mm512_maskz_loadu_epi8(valid, x + r * x_stride + j), flip);
#pragma GCC unroll 16
      for (int o = 0; o < W; ++o) acc[o][r] = _mm512_dpbusd_epi32(acc[o][r], x_offset, wv[o]);
    }
  }
  uint32_t own[W];
  if constexpr (kOwnOffsets) {
    store_offsets<W>(w_sums, own);
    offsets = own;
  }
#pragma GCC unroll 16
  for (int o = 0; o < W; ++o) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const uint32_t sum = static_cast<uint32_t>(_mm512_reduce_add_epi32(acc[o][r]));
      out[o * x_rows + r] = static_cast<int32_t>(sum - offsets[o]);
    }
  }
}

// The offsets of W weight rows for products of more than four rows: the
// pass that brings the rows in from memory (asking for rows kPrefetchRows
// ahead); each block of x rows then reads them from L1.
template <int W>
KVRAG_AVX512_VNNI void vnni_offsets(const int8_t* w, int64_t w_stride, int64_t cols,
                                    uint32_t* offsets) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i w_sums[W];
#pragma GCC unroll 16
  for (int o = 0; o < W; ++o) w_sums[o] = _mm512_setzero_si512();
  for (int64_t j = 0; j < cols; j += 64) {
    const __mmask64 valid = cols - j >= 64 ? ~__mmask64{0} : (__mmask64{1} << (cols - j)) - 1;
#pragma GCC unroll 16
    for (int o = 0; o < W; ++o) {
      _mm_prefetch(reinterpret_cast<const char*>(w + (kPrefetchRows + o) * w_stride + j),
                   _MM_HINT_T0);
      w_sums[o] = _mm512_dpbusd_epi32(w_sums[o], ones,
                                      _mm512_maskz_loadu_epi8(valid, w + o * w_stride + j));
    }
  }
  store_offsets<W>(w_sums, offsets);
}

// The last block of fewer than four x rows.
template <int W, bool kOwnOffsets>
KVRAG_AVX512_VNNI void vnni_tail_block(int64_t rows, const int8_t* w, int64_t w_stride,
                                       const uint32_t* offsets, const int8_t* x, int64_t x_stride,
                                       int64_t x_rows, int64_t cols, int32_t* out) {
  switch (rows) {
    case 3:
      return vnni_dots_block<W, 3, kOwnOffsets>(w, w_stride, offsets, x, x_stride, x_rows, cols,
                                                out);
    case 2:
      return vnni_dots_block<W, 2, kOwnOffsets>(w, w_stride, offsets, x, x_stride, x_rows, cols,
                                                out);
    case 1:
      return vnni_dots_block<W, 1, kOwnOffsets>(w, w_stride, offsets, x, x_stride, x_rows, cols,
                                                out);
  }
}

// W weight rows (at most four) against every activation row, four at a
// time: 16 sums, 4 weight vectors and an x vector of the 32 registers.
template <int W>
KVRAG_AVX512_VNNI void vnni_rows_dots(const int8_t* w, int64_t w_stride, const int8_t* x,
                                      int64_t x_stride, int64_t x_rows, int64_t cols,
                                      int32_t* out) {
  if (x_rows < 4)
    return vnni_tail_block<W, true>(x_rows, w, w_stride, nullptr, x, x_stride, x_rows, cols, out);
  if (x_rows == 4) {
    return vnni_dots_block<W, 4, true>(w, w_stride, nullptr, x, x_stride, x_rows, cols, out);
  }
  uint32_t offsets[W];
  vnni_offsets<W>(w, w_stride, cols, offsets);
  int64_t r = 0;
  for (; r + 4 <= x_rows; r += 4) {
    vnni_dots_block<W, 4, false>(w, w_stride, offsets, x + r * x_stride, x_stride, x_rows, cols,
                                 out + r);
  }
  vnni_tail_block<W, false>(x_rows - r, w, w_stride, offsets, x + r * x_stride, x_stride, x_rows,
                            cols, out + r);
}

KVRAG_AVX512_VNNI void vnni_dots(const int8_t* w, int64_t w_stride, int64_t w_rows, const int8_t* x,
                                 int64_t x_stride, int64_t x_rows, int64_t cols, int32_t* out) {
  int64_t o = 0;
  for (; o + 4 <= w_rows; o += 4) {
    vnni_rows_dots<4>(w + o * w_stride, w_stride, x, x_stride, x_rows, cols, out + o * x_rows);
  }
  const int8_t* rest = w + o * w_stride;
  int32_t* rest_out = out + o * x_rows;
  switch (w_rows - o) {
    case 3:
      return vnni_rows_dots<3>(rest, w_stride, x, x_stride, x_rows, cols, rest_out);
    case 2:
      return vnni_rows_dots<2>(rest, w_stride, x, x_stride, x_rows, cols, rest_out);
    case 1:
      return vnni_rows_dots<1>(rest, w_stride, x, x_stride, x_rows, cols, rest_out);
  }
}

constexpr Int8Kernels kAvx512Vnni{"avx512-vnni", vnni_dots};

#endif

// Weight rows one thread takes at the least: below this, waking threads
// costs more than the rows' share of reading the matrix.
constexpr int64_t kWeightGrainRows = 64;
// Weight rows dequantised per sgemm call (6 MB of float32 at T5-base's 768
// columns). Few calls, because each packs x anew: 256 x rows through
// T5-base's gated wi (6144, 768) took 75 ms in tiles of 256 rows, 51 ms in
// tiles of 2048, 49 ms as f32 sgemm (BM_LinearInt8Dequantized, loaded machine).
constexpr int64_t kDequantizedTileRows = 2048;

// Activation rows quantised with quantize_row, each with its own scale.
struct QuantizedRows {
  std::vector<int8_t> q;  // (rows, cols), contiguous
  std::vector<float> scales;
};

QuantizedRows quantize_rows(ConstView x) {
  QuantizedRows quantized{std::vector<int8_t>(static_cast<size_t>(x.rows * x.cols)),
                          std::vector<float>(static_cast<size_t>(x.rows))};
  for (int64_t r = 0; r < x.rows; ++r) {
    quantized.scales[static_cast<size_t>(r)] =
        quantize_row(x.row(r), x.cols, quantized.q.data() + r * x.cols);
  }
  return quantized;
}

// out[r][o] from the int32 sum of activation row r and weight row o: one
// expression for both int8 paths, so that they agree to the bit.
inline void store_scaled(int32_t sum, const Int8Matrix& w, int64_t o, const QuantizedRows& x,
                         int64_t r, bool accumulate, View out) {
  const float value = static_cast<float>(sum) *
                      (w.scales[static_cast<size_t>(o)] * x.scales[static_cast<size_t>(r)]);
  float& y = out.row(r)[o];
  y = accumulate ? y + value : value;
}

dnnl::engine& onednn_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// oneDNN's s8 · s8 → s32 matmul for weight rows of `cols` values, the
// numbers of activation rows and of weight rows given at run time, so that
// one primitive serves every product of that width (at T5-base's widths as
// fast as a primitive built for the shape). Built once (under a
// millisecond) and kept; running one primitive from several threads at
// once is safe.
const dnnl::matmul& onednn_matmul(int64_t cols) {
  static std::mutex mutex;
  static std::map<int64_t, std::unique_ptr<dnnl::matmul>> built;
  const std::lock_guard lock(mutex);
  std::unique_ptr<dnnl::matmul>& slot = built[cols];
  if (!slot) {
    using Type = dnnl::memory::data_type;
    using Tag = dnnl::memory::format_tag;
    const dnnl::memory::dim any = DNNL_RUNTIME_DIM_VAL;
    const dnnl::memory::desc x({any, cols}, Type::s8, Tag::ab);
    // An Int8Matrix's rows, row-major, are the columns of the matmul's B.
    const dnnl::memory::desc w({cols, any}, Type::s8, dnnl::memory::dims{1, cols});
    const dnnl::memory::desc y({any, any}, Type::s32, Tag::ab);
    slot = std::make_unique<dnnl::matmul>(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(x, w, y), onednn_engine()));
  }
  return *slot;
}

// sums (rows, count) = the int32 products of x's rows with weight rows
// [begin, begin + count), by oneDNN on the calling thread alone: callers
// split the weight rows over kvrag's threads, as the direct path does. An
// OpenMP team per call would ignore compute_threads() (the server computes
// each request on one thread) and its idle threads spin between products:
// with OMP_WAIT_POLICY=active an int8 T5-base encoder took 1.7× as long as
// with passive (BM_Encoder/t5-base/256/int8).
void onednn_sums(const QuantizedRows& x, int64_t rows, const Int8Matrix& w, int64_t begin,
                 int64_t count, int32_t* sums) {
  using Type = dnnl::memory::data_type;
  using Tag = dnnl::memory::format_tag;
  dnnl::engine& engine = onednn_engine();
  try {
    // oneDNN only reads its source and weights arguments.
    dnnl::memory x_memory({{rows, w.cols}, Type::s8, Tag::ab}, engine,
                          const_cast<int8_t*>(x.q.data()));
    dnnl::memory w_memory({{w.cols, count}, Type::s8, Tag::ba}, engine,
                          const_cast<int8_t*>(w.row(begin)));
    dnnl::memory y_memory({{rows, count}, Type::s32, Tag::ab}, engine, sums);
    omp_set_num_threads(1);
    dnnl::stream stream(engine);
    onednn_matmul(w.cols).execute(
        stream, {{DNNL_ARG_SRC, x_memory}, {DNNL_ARG_WEIGHTS, w_memory}, {DNNL_ARG_DST, y_memory}});
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(ErrorKind::kInternal,
                std::string("int8 linear: oneDNN matmul failed: ") + e.what());
  }
}

}  // namespace

float quantize_row(const float* x, int64_t cols, int8_t* q) {
  // A NaN wins the max (std::max would skip it, and the cast below erase
  // it): a non-finite value must stop the product, not turn into zeros.
  float max_abs = 0.0f;
  for (int64_t j = 0; j < cols; ++j) {
    const float a = std::fabs(x[j]);
    max_abs = (a > max_abs || a != a) ? a : max_abs;
  }
  KVRAG_CHECK(std::isfinite(max_abs), kInternal, "int8 quantisation of a row of ", cols,
              " values met ", max_abs, ": a weight or an activation overflowed or is damaged");
  // Below this, 1 / scale overflows: such a row is zeros to int8 anyway.
  constexpr float kSmallestMax = 127.0f / std::numeric_limits<float>::max();
  if (max_abs < kSmallestMax) {
    std::fill(q, q + cols, int8_t{0});
    return 0.0f;
  }
  const float scale = max_abs / 127.0f;
  const float inverse = 1.0f / scale;
  for (int64_t j = 0; j < cols; ++j) {
    // |x| / scale ≤ 127 up to rounding; the clamp keeps the kernels'
    // precondition |q| ≤ 127 whatever the rounding. round_to_nearest, not
    // std::nearbyint: the library call per value was 10 % of an int8
    // encoder's time.
    q[j] = static_cast<int8_t>(round_to_nearest(std::clamp(x[j] * inverse, -127.0f, 127.0f)));
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

const Int8Kernels* avx512_vnni_int8_kernels() {
#if defined(__x86_64__)
  return cpu_has_avx512_vnni() ? &kAvx512Vnni : nullptr;
#else
  return nullptr;
#endif
}

const Int8Kernels& int8_kernels() {
  static const Int8Kernels& best = avx512_vnni_int8_kernels() ? *avx512_vnni_int8_kernels()
                                   : avx2_int8_kernels()      ? *avx2_int8_kernels()
                                                              : kPortable;
  return best;
}

void linear_int8_direct(ConstView x, const Int8Matrix& w, View out, bool accumulate,
                        const Int8Kernels& kernels) {
  check_linear_shapes(x, w, out);
  const int64_t n = x.rows;
  const int64_t cols = w.cols;
  const QuantizedRows xq = quantize_rows(x);
  parallel_for(w.rows, kWeightGrainRows, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> sums(static_cast<size_t>(n * kWeightGrainRows));
    for (int64_t first = begin; first < end; first += kWeightGrainRows) {
      const int64_t count = std::min(kWeightGrainRows, end - first);
      kernels.dots(w.row(first), cols, count, xq.q.data(), cols, n, cols, sums.data());
      // Row by row of out: a column at a time wrote n rows' cache lines for
      // every weight row (a third of 16 rows' product through T5-base's wi).
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t o = 0; o < count; ++o) {
          store_scaled(sums[static_cast<size_t>(o * n + r)], w, first + o, xq, r, accumulate, out);
        }
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

int64_t direct_max_rows_beside_onednn() {
  return avx512_vnni_int8_kernels() ? kInt8VnniDirectMaxRowsBesideOnednn
                                    : kInt8DirectMaxRowsBesideOnednn;
}

bool onednn_int8_supported() {
  static const bool supported = [] {
    using Isa = dnnl::cpu_isa;
    const Isa isa = dnnl::get_effective_cpu_isa();
    return isa == Isa::avx2_vnni || isa == Isa::avx512_core_vnni || isa == Isa::avx512_core_bf16 ||
           isa == Isa::avx512_core_amx;
  }();
  return supported;
}

void linear_int8_onednn(ConstView x, const Int8Matrix& w, View out, bool accumulate) {
  check_linear_shapes(x, w, out);
  KVRAG_CHECK(onednn_int8_supported(), kInternal,
              "int8 linear: oneDNN's int8 matmul needs a CPU with VNNI");
  const QuantizedRows xq = quantize_rows(x);
  parallel_for(w.rows, kWeightGrainRows, [&](int64_t begin, int64_t end) {
    const int64_t count = end - begin;
    std::vector<int32_t> sums(static_cast<size_t>(x.rows * count));
    onednn_sums(xq, x.rows, w, begin, count, sums.data());
    for (int64_t r = 0; r < x.rows; ++r) {
      const int32_t* row_sums = sums.data() + r * count;
      for (int64_t o = begin; o < end; ++o) {
        store_scaled(row_sums[o - begin], w, o, xq, r, accumulate, out);
      }
    }
  });
}

void prepare_int8_products(std::span<const int64_t> widths) {
  if (!onednn_int8_supported()) return;
  for (const int64_t cols : widths) {
    const Int8Matrix w = quantize_int8(Tensor(256, cols).view());
    for (const int64_t rows : {direct_max_rows_beside_onednn() + 1, int64_t{64}}) {
      const Tensor x(rows, cols);
      Tensor out(rows, w.rows);
      linear_int8_onednn(x.view(), w, out.view(), false);
    }
  }
}

void linear(ConstView x, const Int8Matrix& w, View out, bool accumulate) {
  if (onednn_int8_supported() && x.rows > direct_max_rows_beside_onednn()) {
    linear_int8_onednn(x, w, out, accumulate);
  } else if (x.rows <= kInt8DirectMaxRows) {
    linear_int8_direct(x, w, out, accumulate);
  } else {
    linear_int8_dequantized(x, w, out, accumulate);
  }
}

}  // namespace kvrag
