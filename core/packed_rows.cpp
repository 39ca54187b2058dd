#include "core/packed_rows.h"

#include <cstring>

#include "core/avx2.h"
#include "core/error.h"
#include "core/half.h"

namespace kvrag {
namespace {

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
    for (int64_t j = s * segment; j < (s + 1) * segment; ++j) y[j] += weight * raw_value<D>(values, j);
  }
}

void portable_segment_dots(KvDtype dtype, const uint8_t* row, int64_t cols, const float* x,
                           int64_t segment, float* out) {
  switch (dtype) {
    case KvDtype::kF32:
      return portable_dots<KvDtype::kF32>(row, cols, x, segment, out);
    case KvDtype::kF16:
      return portable_dots<KvDtype::kF16>(row, cols, x, segment, out);
    case KvDtype::kInt8:
      return portable_dots<KvDtype::kInt8>(row, cols, x, segment, out);
  }
}

void portable_segment_axpy(KvDtype dtype, const uint8_t* row, int64_t cols, const float* a,
                           int64_t segment, float* y) {
  switch (dtype) {
    case KvDtype::kF32:
      return portable_axpy<KvDtype::kF32>(row, cols, a, segment, y);
    case KvDtype::kF16:
      return portable_axpy<KvDtype::kF16>(row, cols, a, segment, y);
    case KvDtype::kInt8:
      return portable_axpy<KvDtype::kInt8>(row, cols, a, segment, y);
  }
}

constexpr PackedKernels kPortable{"portable", portable_segment_dots, portable_segment_axpy};

#if defined(__x86_64__)

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

template <KvDtype D>
KVRAG_AVX2 void avx2_dots(const uint8_t* row, int64_t cols, const float* x, int64_t segment,
                          float* out) {
  float scale;
  const uint8_t* values = row_values<D>(row, scale);
  for (int64_t s = 0; s * segment < cols; ++s) {
    const int64_t end = (s + 1) * segment;
    int64_t j = s * segment;
    __m256 acc = _mm256_setzero_ps();
    for (; j + 8 <= end; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), load8<D>(values, j), acc);
    float sum = horizontal_sum(acc);
    for (; j < end; ++j) sum += x[j] * raw_value<D>(values, j);
    out[s] = sum * scale;
  }
}

template <KvDtype D>
KVRAG_AVX2 void avx2_axpy(const uint8_t* row, int64_t cols, const float* a, int64_t segment,
                          float* y) {
  float scale;
  const uint8_t* values = row_values<D>(row, scale);
  for (int64_t s = 0; s * segment < cols; ++s) {
    const float weight = a[s] * scale;
    const __m256 w = _mm256_set1_ps(weight);
    const int64_t end = (s + 1) * segment;
    int64_t j = s * segment;
    for (; j + 8 <= end; j += 8) {
      _mm256_storeu_ps(y + j, _mm256_fmadd_ps(w, load8<D>(values, j), _mm256_loadu_ps(y + j)));
    }
    for (; j < end; ++j) y[j] += weight * raw_value<D>(values, j);
  }
}

KVRAG_AVX2 void avx2_segment_dots(KvDtype dtype, const uint8_t* row, int64_t cols, const float* x,
                                  int64_t segment, float* out) {
  switch (dtype) {
    case KvDtype::kF32:
      return avx2_dots<KvDtype::kF32>(row, cols, x, segment, out);
    case KvDtype::kF16:
      return avx2_dots<KvDtype::kF16>(row, cols, x, segment, out);
    case KvDtype::kInt8:
      return avx2_dots<KvDtype::kInt8>(row, cols, x, segment, out);
  }
}

KVRAG_AVX2 void avx2_segment_axpy(KvDtype dtype, const uint8_t* row, int64_t cols, const float* a,
                                  int64_t segment, float* y) {
  switch (dtype) {
    case KvDtype::kF32:
      return avx2_axpy<KvDtype::kF32>(row, cols, a, segment, y);
    case KvDtype::kF16:
      return avx2_axpy<KvDtype::kF16>(row, cols, a, segment, y);
    case KvDtype::kInt8:
      return avx2_axpy<KvDtype::kInt8>(row, cols, a, segment, y);
  }
}

constexpr PackedKernels kAvx2{"avx2", avx2_segment_dots, avx2_segment_axpy};

#endif

}  // namespace

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
  if (m.cols > 0) portable_segment_axpy(m.dtype, m.row(i), m.cols, &one, m.cols, out);
}

const PackedKernels& portable_packed_kernels() { return kPortable; }

const PackedKernels* avx2_packed_kernels() {
#if defined(__x86_64__)
  return cpu_has_avx2() ? &kAvx2 : nullptr;
#else
  return nullptr;
#endif
}

const PackedKernels& packed_kernels() {
  static const PackedKernels& best = avx2_packed_kernels() ? *avx2_packed_kernels() : kPortable;
  return best;
}

}  // namespace kvrag
