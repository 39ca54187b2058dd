#include "core/packed_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/avx2.h"
#include "core/error.h"
#include "core/half.h"

namespace kvrag {
namespace {

// all_finite's portable loop: no branch per value, so that the compiler
// vectorises it for the baseline ISA.
template <int lane>
bool all_finite_portable(const uint8_t* p, int64_t n) {
  using Bits = std::conditional_t<lane == 2, uint16_t, uint32_t>;
  constexpr auto exponent = static_cast<Bits>(lane == 2 ? 0x7c00u : 0x7f800000u);
  uint32_t special = 0;
  for (int64_t j = 0; j < n; ++j) {
    Bits bits;
    std::memcpy(&bits, p + lane * j, sizeof(bits));
    special |= static_cast<uint32_t>((bits & exponent) == exponent);
  }
  return special == 0;
}

// An int8 row's scale, read bytewise: rows start at any byte address.
float row_scale(const uint8_t* row) {
  float scale;
  std::memcpy(&scale, row, sizeof(float));
  return scale;
}

// Value j of a row, without its int8 scale (the callers apply it once per row).
template <KvDtype D>
float raw_value(const uint8_t* values, int64_t j) {
  if constexpr (D == KvDtype::kF32) {
    float f;
    std::memcpy(&f, values + 4 * j, sizeof(float));
    return f;
  } else if constexpr (D == KvDtype::kF16) {
    uint16_t h;
    std::memcpy(&h, values + 2 * j, sizeof(uint16_t));
    return half_to_float(h);
  } else {
    return static_cast<float>(static_cast<int8_t>(values[j]));
  }
}

// Where a row's values start, and the factor its raw values carry.
template <KvDtype D>
const uint8_t* row_values(const uint8_t* row, float& scale) {
  if constexpr (D == KvDtype::kInt8) {
    scale = row_scale(row);
    return row + sizeof(float);
  } else {
    scale = 1.0f;
    return row;
  }
}

template <KvDtype D>
void portable_dots(const uint8_t* row, int64_t cols, const float* x, int64_t segment, float* out) {
  float scale;
  const uint8_t* values = row_values<D>(row, scale);
  for (int64_t s = 0; s * segment < cols; ++s) {
    float sum = 0.0f;
    for (int64_t j = s * segment; j < (s + 1) * segment; ++j) sum += x[j] * raw_value<D>(values, j);
    out[s] = sum * scale;
  }
}

template <KvDtype D>
void portable_axpy(const uint8_t* row, int64_t cols, const float* a, int64_t segment, float* y) {
  float scale;
  const uint8_t* values = row_values<D>(row, scale);
  for (int64_t s = 0; s * segment < cols; ++s) {
    const float weight = a[s] * scale;
    for (int64_t j = s * segment; j < (s + 1) * segment; ++j)
      y[j] += weight * raw_value<D>(values, j);
  }
}

template <KvDtype D>
void portable_dots_rows(const uint8_t* rows, size_t stride, int64_t count, int64_t cols,
                        const float* x, int64_t segment, float* out) {
  const int64_t segments = cols / segment;
  for (int64_t r = 0; r < count; ++r) {
    portable_dots<D>(rows + static_cast<size_t>(r) * stride, cols, x, segment, out + r * segments);
  }
}

template <KvDtype D>
void portable_axpy_rows(const uint8_t* rows, size_t stride, int64_t count, int64_t cols,
                        const float* a, int64_t segment, float* y) {
  const int64_t segments = cols / segment;
  for (int64_t r = 0; r < count; ++r) {
    portable_axpy<D>(rows + static_cast<size_t>(r) * stride, cols, a + r * segments, segment, y);
  }
}

void portable_segment_dots(KvDtype dtype, const uint8_t* rows, size_t stride, int64_t count,
                           int64_t cols, const float* x, int64_t segment, float* out) {
  switch (dtype) {
    case KvDtype::kF32:
      return portable_dots_rows<KvDtype::kF32>(rows, stride, count, cols, x, segment, out);
    case KvDtype::kF16:
      return portable_dots_rows<KvDtype::kF16>(rows, stride, count, cols, x, segment, out);
    case KvDtype::kInt8:
      return portable_dots_rows<KvDtype::kInt8>(rows, stride, count, cols, x, segment, out);
  }
}

void portable_segment_axpy(KvDtype dtype, const uint8_t* rows, size_t stride, int64_t count,
                           int64_t cols, const float* a, int64_t segment, float* y) {
  switch (dtype) {
    case KvDtype::kF32:
      return portable_axpy_rows<KvDtype::kF32>(rows, stride, count, cols, a, segment, y);
    case KvDtype::kF16:
      return portable_axpy_rows<KvDtype::kF16>(rows, stride, count, cols, a, segment, y);
    case KvDtype::kInt8:
      return portable_axpy_rows<KvDtype::kInt8>(rows, stride, count, cols, a, segment, y);
  }
}

constexpr PackedKernels kPortable{"portable", portable_segment_dots, portable_segment_axpy};

#if defined(__x86_64__)

// Bytes of one raw value.
template <KvDtype D>
constexpr size_t kValueBytes = D == KvDtype::kF32   ? 4
                               : D == KvDtype::kF16 ? 2
                                                    : 1;

// Eight raw values of a row from `values + j`, as float32.
template <KvDtype D>
KVRAG_AVX2 __m256 load8(const uint8_t* values, int64_t j) {
  if constexpr (D == KvDtype::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(values + 4 * j));
  } else if constexpr (D == KvDtype::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(values + 2 * j)));
  } else {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(values + j));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  }
}

// Rows the AVX2 kernels take at once: four independent FMA chains per head
// (one chain stalls on the FMA latency), and one load and store of the output
// for four value rows.
constexpr int kRowGroup = 4;

// The four sums of a, b, c and d's lanes: (l0 + l1) + (l2 + l3) + ((l4 + l5)
// + (l6 + l7)) for each, in the same order whatever the other three hold,
// so a row's score does not depend on the rows grouped with it.
KVRAG_AVX2 __m128 horizontal_sums(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 sums = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(sums), _mm256_extractf128_ps(sums, 1));
}

// Rows ahead of the ones being read whose bytes are prefetched: the four
// rows of a group are four streams 1.5 KiB apart (T5-base f16), which the
// hardware prefetcher did not run far enough ahead of (perf: the time in the
// loads). BM_CrossAttention/3000, one core: f16 10.4 → 5.8 ms, int8 8.1 →
// 3.8 ms; two: f16 5.3 → 3.1-3.6, int8 4.4 → 2.0-3.2. 4, 8 and 16 rows
// ahead measured alike.
constexpr int64_t kPrefetchRows = 8;

// Prefetches the cache lines of bytes [begin, end) of the row `ahead` rows
// after `values` (harmless past the end: a prefetch does not fault), into
// L1: into L2 alone (_MM_HINT_T1) f16 took 6.2-6.5 ms where this takes
// 3.7-3.8 (BM_CrossAttention/3000/f16/chunks-64, three alternated runs).
inline void prefetch_span(const uint8_t* values, size_t ahead, size_t begin, size_t end) {
  for (size_t at = begin; at < end; at += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(values + ahead + at), _MM_HINT_T0);
  }
}

// Where each of N rows' values start and the factor its raw values carry;
// rows at or past `count` (a tail group) repeat row 0, whose lanes are
// computed and dropped.
template <KvDtype D, int N>
struct RowGroup {
  RowGroup(const uint8_t* rows, size_t stride, int64_t count) : stride(stride) {
    for (int r = 0; r < N; ++r) {
      values[r] = row_values<D>(rows + static_cast<size_t>(r < count ? r : 0) * stride, scale[r]);
    }
  }

  // Each row's bytes of values [begin, end), kPrefetchRows rows ahead.
  void prefetch(int64_t begin, int64_t end) const {
    for (int r = 0; r < N; ++r) {
      prefetch_span(values[r], kPrefetchRows * stride, begin * kValueBytes<D>,
                    end * kValueBytes<D>);
    }
  }

  size_t stride;
  float scale[N];
  const uint8_t* values[N];
};

// Segment s's dots from value j to `end`, added to `acc` (eight lanes a
// row), summed and scaled into out[r·segments + s] for the group's first
// `count` rows: what the kernels of every width leave to eight lanes and
// scalar code.
template <KvDtype D>
KVRAG_AVX2 inline void finish_dots(const RowGroup<D, kRowGroup>& g, int64_t count, const float* x,
                                   int64_t j, int64_t end, __m256 (&acc)[kRowGroup], float* out,
                                   int64_t segments, int64_t s) {
  for (; j + 8 <= end; j += 8) {
    const __m256 xj = _mm256_loadu_ps(x + j);
    for (int64_t r = 0; r < kRowGroup; ++r) {
      acc[r] = _mm256_fmadd_ps(xj, load8<D>(g.values[r], j), acc[r]);
    }
  }
  float sums[kRowGroup];
  _mm_storeu_ps(sums, horizontal_sums(acc[0], acc[1], acc[2], acc[3]));
  for (int64_t r = 0; r < count; ++r) {
    float sum = sums[r];
    for (int64_t t = j; t < end; ++t) sum += x[t] * raw_value<D>(g.values[r], t);
    out[r * segments + s] = sum * g.scale[r];
  }
}

// y[j .. end) += Σ_r weight[r] · row r, eight lanes then scalar code.
template <KvDtype D, int N>
KVRAG_AVX2 inline void finish_axpy(const RowGroup<D, N>& g, const float (&weight)[N], int64_t j,
                                   int64_t end, float* y) {
  __m256 w[N];
  for (int r = 0; r < N; ++r) w[r] = _mm256_set1_ps(weight[r]);
  for (; j + 8 <= end; j += 8) {
    __m256 sum = _mm256_loadu_ps(y + j);
    for (int r = 0; r < N; ++r) sum = _mm256_fmadd_ps(w[r], load8<D>(g.values[r], j), sum);
    _mm256_storeu_ps(y + j, sum);
  }
  for (; j < end; ++j) {
    for (int r = 0; r < N; ++r) y[j] += weight[r] * raw_value<D>(g.values[r], j);
  }
}

// Segment s's weight of each row: its attention weight times its scale.
template <KvDtype D, int N>
void segment_weights(const RowGroup<D, N>& g, const float* a, int64_t segments, int64_t s,
                     float (&weight)[N]) {
  for (int r = 0; r < N; ++r) weight[r] = a[r * segments + s] * g.scale[r];
}

// out[r·segments + s] for kRowGroup rows, or for `count` < kRowGroup rows
// (the tail).
template <KvDtype D>
KVRAG_AVX2 void avx2_dots_group(const uint8_t* rows, size_t stride, int64_t count, int64_t cols,
                                const float* x, int64_t segment, float* out) {
  const int64_t segments = cols / segment;
  const RowGroup<D, kRowGroup> g(rows, stride, count);
  for (int64_t s = 0; s < segments; ++s) {
    g.prefetch(s * segment, (s + 1) * segment);
    __m256 acc[kRowGroup] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                             _mm256_setzero_ps()};
    finish_dots(g, count, x, s * segment, (s + 1) * segment, acc, out, segments, s);
  }
}

// y += the N rows at `rows`, each times its segment's weight (N known at
// compile time: the FMAs unroll).
template <KvDtype D, int N>
KVRAG_AVX2 void avx2_axpy_group(const uint8_t* rows, size_t stride, int64_t cols, const float* a,
                                int64_t segment, float* y) {
  const int64_t segments = cols / segment;
  const RowGroup<D, N> g(rows, stride, N);
  for (int64_t s = 0; s < segments; ++s) {
    float weight[N];
    segment_weights(g, a, segments, s, weight);
    g.prefetch(s * segment, (s + 1) * segment);
    finish_axpy(g, weight, s * segment, (s + 1) * segment, y);
  }
}

// The AVX-512 kernels: the AVX2 ones' loops sixteen values at a time.
// BM_CrossAttention/3000/*/chunks-64, both sets in one run, 8 repetitions
// randomly interleaved, two runs: int8 K/V 2.01 / 2.79 → 1.70 / 2.01 ms
// (widening int8 to float32 was much of its work); f16 and f32 alike
// (3.6-3.7 and 6.8-7.4 ms either way: memory-bound).

// Sixteen raw values of a row from `values + j`, as float32. The zero-masked
// forms with every lane kept: GCC 12 warns (-Wmaybe-uninitialized) on the
// unmasked ones' "undefined" source operand.
constexpr __mmask16 kAll16 = 0xffff;

template <KvDtype D>
KVRAG_AVX512 __m512 load16(const uint8_t* values, int64_t j) {
  if constexpr (D == KvDtype::kF32) {
    return _mm512_loadu_ps(values + 4 * j);
  } else if constexpr (D == KvDtype::kF16) {
    return _mm512_maskz_cvtph_ps(
        kAll16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + 2 * j)));
  } else {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(values + j));
    return _mm512_maskz_cvtepi32_ps(kAll16, _mm512_maskz_cvtepi8_epi32(kAll16, q));
  }
}

// The 16 lanes folded to 8 (lane i + lane i + 8), for horizontal_sums.
KVRAG_AVX512 __m256 folded(__m512 v) {
  return _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0),
                       _mm512_maskz_extractf32x8_ps(0xff, v, 1));
}

// avx2_dots_group sixteen values at a time, each row's lanes folded to
// eight for what is left; a row's sum does not depend on the rows grouped
// with it.
template <KvDtype D>
KVRAG_AVX512 void avx512_dots_group(const uint8_t* rows, size_t stride, int64_t count, int64_t cols,
                                    const float* x, int64_t segment, float* out) {
  const int64_t segments = cols / segment;
  const RowGroup<D, kRowGroup> g(rows, stride, count);
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t end = (s + 1) * segment;
    int64_t j = s * segment;
    g.prefetch(j, end);
    __m512 wide[kRowGroup] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                              _mm512_setzero_ps()};
    for (; j + 16 <= end; j += 16) {
      const __m512 xj = _mm512_loadu_ps(x + j);
      for (int64_t r = 0; r < kRowGroup; ++r) {
        wide[r] = _mm512_fmadd_ps(xj, load16<D>(g.values[r], j), wide[r]);
      }
    }
    __m256 acc[kRowGroup];
    for (int64_t r = 0; r < kRowGroup; ++r) acc[r] = folded(wide[r]);
    finish_dots(g, count, x, j, end, acc, out, segments, s);
  }
}

// avx2_axpy_group sixteen values at a time: each output adds the rows in
// the same order, so the sums equal the AVX2 kernel's.
template <KvDtype D, int N>
KVRAG_AVX512 void avx512_axpy_group(const uint8_t* rows, size_t stride, int64_t cols,
                                    const float* a, int64_t segment, float* y) {
  const int64_t segments = cols / segment;
  const RowGroup<D, N> g(rows, stride, N);
  for (int64_t s = 0; s < segments; ++s) {
    float weight[N];
    segment_weights(g, a, segments, s, weight);
    const int64_t end = (s + 1) * segment;
    int64_t j = s * segment;
    g.prefetch(j, end);
    __m512 w[N];
    for (int r = 0; r < N; ++r) w[r] = _mm512_set1_ps(weight[r]);
    for (; j + 16 <= end; j += 16) {
      __m512 sum = _mm512_loadu_ps(y + j);
      for (int r = 0; r < N; ++r) sum = _mm512_fmadd_ps(w[r], load16<D>(g.values[r], j), sum);
      _mm512_storeu_ps(y + j, sum);
    }
    finish_axpy(g, weight, j, end, y);
  }
}

// The row loops and the dtype switch, the same for every instruction set:
// `Groups` gives a set's kernels of one group of rows (G::dots<D> for up to
// kRowGroup rows, G::axpy<D, N> for N of them), each a call of its own.
template <typename Groups, KvDtype D>
void dots_by_group(const uint8_t* rows, size_t stride, int64_t count, int64_t cols, const float* x,
                   int64_t segment, float* out) {
  const int64_t segments = cols / segment;
  for (int64_t r = 0; r < count; r += kRowGroup) {
    Groups::template dots<D>(rows + static_cast<size_t>(r) * stride, stride,
                             std::min<int64_t>(kRowGroup, count - r), cols, x, segment,
                             out + r * segments);
  }
}

template <typename Groups, KvDtype D>
void axpy_by_group(const uint8_t* rows, size_t stride, int64_t count, int64_t cols, const float* a,
                   int64_t segment, float* y) {
  const int64_t segments = cols / segment;
  int64_t r = 0;
  for (; r + kRowGroup <= count; r += kRowGroup) {
    Groups::template axpy<D, kRowGroup>(rows + static_cast<size_t>(r) * stride, stride, cols,
                                        a + r * segments, segment, y);
  }
  for (; r < count; ++r) {
    Groups::template axpy<D, 1>(rows + static_cast<size_t>(r) * stride, stride, cols,
                                a + r * segments, segment, y);
  }
}

template <typename Groups>
void segment_dots_by_group(KvDtype dtype, const uint8_t* rows, size_t stride, int64_t count,
                           int64_t cols, const float* x, int64_t segment, float* out) {
  switch (dtype) {
    case KvDtype::kF32:
      return dots_by_group<Groups, KvDtype::kF32>(rows, stride, count, cols, x, segment, out);
    case KvDtype::kF16:
      return dots_by_group<Groups, KvDtype::kF16>(rows, stride, count, cols, x, segment, out);
    case KvDtype::kInt8:
      return dots_by_group<Groups, KvDtype::kInt8>(rows, stride, count, cols, x, segment, out);
  }
}

template <typename Groups>
void segment_axpy_by_group(KvDtype dtype, const uint8_t* rows, size_t stride, int64_t count,
                           int64_t cols, const float* a, int64_t segment, float* y) {
  switch (dtype) {
    case KvDtype::kF32:
      return axpy_by_group<Groups, KvDtype::kF32>(rows, stride, count, cols, a, segment, y);
    case KvDtype::kF16:
      return axpy_by_group<Groups, KvDtype::kF16>(rows, stride, count, cols, a, segment, y);
    case KvDtype::kInt8:
      return axpy_by_group<Groups, KvDtype::kInt8>(rows, stride, count, cols, a, segment, y);
  }
}

struct Avx2Groups {
  template <KvDtype D>
  static void dots(const uint8_t* rows, size_t stride, int64_t count, int64_t cols, const float* x,
                   int64_t segment, float* out) {
    avx2_dots_group<D>(rows, stride, count, cols, x, segment, out);
  }
  template <KvDtype D, int N>
  static void axpy(const uint8_t* rows, size_t stride, int64_t cols, const float* a,
                   int64_t segment, float* y) {
    avx2_axpy_group<D, N>(rows, stride, cols, a, segment, y);
  }
};

struct Avx512Groups {
  template <KvDtype D>
  static void dots(const uint8_t* rows, size_t stride, int64_t count, int64_t cols, const float* x,
                   int64_t segment, float* out) {
    avx512_dots_group<D>(rows, stride, count, cols, x, segment, out);
  }
  template <KvDtype D, int N>
  static void axpy(const uint8_t* rows, size_t stride, int64_t cols, const float* a,
                   int64_t segment, float* y) {
    avx512_axpy_group<D, N>(rows, stride, cols, a, segment, y);
  }
};

constexpr PackedKernels kAvx2{"avx2", segment_dots_by_group<Avx2Groups>,
                              segment_axpy_by_group<Avx2Groups>};
constexpr PackedKernels kAvx512{"avx512", segment_dots_by_group<Avx512Groups>,
                                segment_axpy_by_group<Avx512Groups>};

// Whether none of `n` values of `lane` bytes (2: binary16, 4: float32) has
// its exponent all ones (NaN or ±Inf): 32 bytes per compare, where the
// portable loop's compiler-vectorised SSE2 took 34 % of reading a blob.
template <int lane>
KVRAG_AVX2 bool avx2_all_finite(const uint8_t* p, int64_t n) {
  const __m256i exponent = lane == 2 ? _mm256_set1_epi16(0x7c00) : _mm256_set1_epi32(0x7f800000);
  const int64_t bytes = n * lane;
  __m256i special = _mm256_setzero_si256();
  int64_t at = 0;
  for (; at + 32 <= bytes; at += 32) {
    const __m256i v =
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + at)), exponent);
    special = _mm256_or_si256(
        special, lane == 2 ? _mm256_cmpeq_epi16(v, exponent) : _mm256_cmpeq_epi32(v, exponent));
  }
  return _mm256_testz_si256(special, special) &&
         all_finite_portable<lane>(p + at, (bytes - at) / lane);
}

#endif

// Whether `n` values of `lane` bytes from p are all finite, with the
// widest code this CPU runs.
template <int lane>
bool all_finite(const uint8_t* p, int64_t n) {
#if defined(__x86_64__)
  static const bool avx2 = cpu_has_avx2();
  if (avx2) return avx2_all_finite<lane>(p, n);
#endif
  return all_finite_portable<lane>(p, n);
}

bool row_is_finite(const PackedRows& m, int64_t i) {
  switch (m.dtype) {
    case KvDtype::kF32:
      return all_finite<4>(m.row(i), m.cols);
    case KvDtype::kF16:
      return all_finite<2>(m.row(i), m.cols);
    case KvDtype::kInt8:
      return std::isfinite(row_scale(m.row(i)));  // the int8 values always are
  }
  return false;
}

}  // namespace

int64_t first_non_finite_row(const PackedRows& m) {
  // Rows one after another (a blob's matrices) are scanned as one run;
  // only a run that fails is searched row by row.
  const bool contiguous =
      m.dtype != KvDtype::kInt8 && m.stride == packed_row_bytes(m.dtype, m.cols);
  if (contiguous) {
    const bool finite = m.dtype == KvDtype::kF16 ? all_finite<2>(m.data, m.rows * m.cols)
                                                 : all_finite<4>(m.data, m.rows * m.cols);
    if (finite) return m.rows;
  }
  for (int64_t i = 0; i < m.rows; ++i) {
    if (!row_is_finite(m, i)) return i;
  }
  return m.rows;
}

size_t packed_row_bytes(KvDtype dtype, int64_t cols) {
  const auto n = static_cast<size_t>(cols);
  switch (dtype) {
    case KvDtype::kF32:
      return 4 * n;
    case KvDtype::kF16:
      return 2 * n;
    case KvDtype::kInt8:
      return sizeof(float) + n;
  }
  KVRAG_THROW(kInternal, "unknown K/V dtype code ", static_cast<uint32_t>(dtype));
}

PackedRows packed_view(ConstView view) {
  return PackedRows{KvDtype::kF32, reinterpret_cast<const uint8_t*>(view.data), view.rows,
                    view.cols, static_cast<size_t>(view.ld) * sizeof(float)};
}

void unpack_row(const PackedRows& m, int64_t i, float* out) {
  // One weight of 1 per value: the axpy kernel adds the row onto zeros.
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(m.cols));
  const float one = 1.0f;
  if (m.cols > 0) portable_segment_axpy(m.dtype, m.row(i), m.stride, 1, m.cols, &one, m.cols, out);
}

const std::vector<const PackedKernels*>& packed_kernel_sets() {
  static const std::vector<const PackedKernels*> sets = [] {
    std::vector<const PackedKernels*> found{&kPortable};
#if defined(__x86_64__)
    if (cpu_has_avx2()) found.push_back(&kAvx2);
    if (cpu_has_avx512()) found.push_back(&kAvx512);
#endif
    return found;
  }();
  return sets;
}

const PackedKernels& packed_kernels() { return *packed_kernel_sets().back(); }

}  // namespace kvrag
