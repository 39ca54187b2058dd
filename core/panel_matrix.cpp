#include "core/panel_matrix.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <type_traits>

#include "core/avx2.h"
#include "core/error.h"
#include "core/half.h"
#include "core/parallel.h"

namespace kvrag {
namespace {

constexpr int64_t kP = PanelMatrix::kPanelRows;
// The most rows of x a tile kernel takes (AVX-512's: 12 rows × two vectors
// of 16 outputs are 24 accumulators, with the two weight vectors and a
// broadcast x value 27 of its 32 registers).
constexpr int kMaxTileRows = 12;
// Rows of x one pass over a thread's panels takes at the most: about this
// many bytes of them, so that they stay in L2 while the panels go by.
constexpr int64_t kRowBlockBytes = int64_t{512} << 10;

// tile[r · kP + c] = Σ_k x[r][k] · panel[k · kP + c] for `rows` rows of x
// (ldx apart). `next` is this tile's share of the panel a thread reads
// after this one: the vector kernels ask for it while they compute,
// next_stride floats of it per column of their own (kP when one tile
// takes all the rows), so that it is on its way when this one is done
// (the first rows of a panel otherwise waited for memory, the later ones
// for nothing: T5-base's encoder products for 16 rows, 18.9 → 14.6 ms in
// a scratch harness; and with the whole panel asked for by the first of
// two tiles, memory sat idle during the second: BM_Encoder/t5-base/16/cold
// 12.8-14.2 → 10.8-12.5 ms, four alternated runs).
template <typename T>
using TileKernel = void (*)(const T* panel, const T* next, int64_t next_stride, int64_t cols,
                            const float* x, int64_t ldx, float* tile);

inline float widened(float v) { return v; }
inline float widened(uint16_t h) { return half_to_float(h); }

template <typename T, int R>
void panel_tile_portable(const T* panel, const T*, int64_t, int64_t cols, const float* x,
                         int64_t ldx, float* tile) {
  float acc[R][kP] = {};
  for (int64_t k = 0; k < cols; ++k) {
    const T* wk = panel + k * kP;
    for (int r = 0; r < R; ++r) {
      const float xv = x[r * ldx + k];
      for (int c = 0; c < kP; ++c) acc[r][c] += xv * widened(wk[c]);
    }
  }
  for (int r = 0; r < R; ++r) std::copy(acc[r], acc[r] + kP, tile + r * kP);
}

#if defined(__x86_64__)
// Eight weights from `w` as float32 (binary16: widened, exactly).
KVRAG_AVX2 inline __m256 load8_weights(const float* w) { return _mm256_load_ps(w); }
KVRAG_AVX2 inline __m256 load8_weights(const uint16_t* w) {
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(w)));
}

// AVX2 has 16 registers: R rows × a panel's four vectors of 8 outputs
// would spill, so the tile takes the panel's two halves of 16 outputs one
// after the other, 6 rows × 2 vectors each (12 accumulators, two weight
// vectors, a broadcast): the second half's reads come from L2.
template <typename T, int R>
KVRAG_AVX2 void panel_tile_256(const T* panel, const T* next, int64_t next_stride, int64_t cols,
                               const float* x, int64_t ldx, float* tile) {
  for (int h = 0; h < 2; ++h) {
    __m256 acc[R][2];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < cols; ++k) {
      const T* wk = panel + k * kP + 16 * h;
      _mm_prefetch(reinterpret_cast<const char*>(next + (2 * k + h) * next_stride / 2),
                   _MM_HINT_T1);
      const __m256 w0 = load8_weights(wk);
      const __m256 w1 = load8_weights(wk + 8);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
        acc[r][0] = _mm256_fmadd_ps(w0, xb, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(w1, xb, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm256_store_ps(tile + r * kP + 16 * h, acc[r][0]);
      _mm256_store_ps(tile + r * kP + 16 * h + 8, acc[r][1]);
    }
  }
}

// Sixteen weights from `w` as float32 (binary16: widened, exactly; the
// zero-masked form, as GCC 12 warns on the unmasked one's undefined source).
KVRAG_AVX512 inline __m512 load16_weights(const float* w) { return _mm512_load_ps(w); }
KVRAG_AVX512 inline __m512 load16_weights(const uint16_t* w) {
  return _mm512_maskz_cvtph_ps(0xffff, _mm256_load_si256(reinterpret_cast<const __m256i*>(w)));
}

template <typename T, int R>
KVRAG_AVX512 void panel_tile_512(const T* panel, const T* next, int64_t next_stride, int64_t cols,
                                 const float* x, int64_t ldx, float* tile) {
  __m512 acc[R][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < cols; ++k) {
    const T* wk = panel + k * kP;
    // A panel's row of 32 values: two cache lines of float32, one of binary16.
    _mm_prefetch(reinterpret_cast<const char*>(next + k * next_stride), _MM_HINT_T1);
    if constexpr (sizeof(T) == sizeof(float)) {
      _mm_prefetch(reinterpret_cast<const char*>(next + k * next_stride + 16), _MM_HINT_T1);
    }
    const __m512 w0 = load16_weights(wk);
    const __m512 w1 = load16_weights(wk + 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
      acc[r][0] = _mm512_fmadd_ps(w0, xb, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(w1, xb, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_store_ps(tile + r * kP, acc[r][0]);
    _mm512_store_ps(tile + r * kP + 16, acc[r][1]);
  }
}
#endif

// One instruction set's tile kernels, for 1 to max_rows rows of x.
template <typename T>
struct TileKernels {
  int64_t max_rows;
  TileKernel<T> kernels[kMaxTileRows];
};

// The portable kernels take four rows: more accumulators than that spill
// where the compiler has only SSE2's 16 registers.
template <typename T>
constexpr TileKernels<T> kPortableTiles{4,
                                        {panel_tile_portable<T, 1>, panel_tile_portable<T, 2>,
                                         panel_tile_portable<T, 3>, panel_tile_portable<T, 4>}};
#if defined(__x86_64__)
template <typename T>
constexpr TileKernels<T> kTiles256{
    6,
    {panel_tile_256<T, 1>, panel_tile_256<T, 2>, panel_tile_256<T, 3>, panel_tile_256<T, 4>,
     panel_tile_256<T, 5>, panel_tile_256<T, 6>}};
template <typename T>
constexpr TileKernels<T> kTiles512{
    kMaxTileRows,
    {panel_tile_512<T, 1>, panel_tile_512<T, 2>, panel_tile_512<T, 3>, panel_tile_512<T, 4>,
     panel_tile_512<T, 5>, panel_tile_512<T, 6>, panel_tile_512<T, 7>, panel_tile_512<T, 8>,
     panel_tile_512<T, 9>, panel_tile_512<T, 10>, panel_tile_512<T, 11>, panel_tile_512<T, 12>}};
#endif

template <typename T>
const TileKernels<T>& tiles_for(VectorIsa isa) {
#if defined(__x86_64__)
  if (isa == VectorIsa::kAvx512) return kTiles512<T>;
  if (isa == VectorIsa::kAvx2) return kTiles256<T>;
#endif
  return kPortableTiles<T>;
}

// out (+)= the first out.cols columns of a tile of out.rows rows.
void write_tile(const float* tile, View out, bool accumulate) {
  for (int64_t r = 0; r < out.rows; ++r) {
    float* y = out.row(r);
    const float* t = tile + r * kP;
    for (int64_t c = 0; c < out.cols; ++c) y[c] = accumulate ? y[c] + t[c] : t[c];
  }
}

// Rows [begin, begin + count) of x through panels [first, last) of w.
// The rows are split evenly into as few tiles as the kernels allow (16
// rows: 8 + 8, not 12 + 4), and each panel goes through all of them while
// it sits in L2.
template <typename T>
void panels_times_rows(const TileKernels<T>& tiles, ConstView x, int64_t begin, int64_t count,
                       const BasicPanelMatrix<T>& w, int64_t first, int64_t last, View out,
                       bool accumulate) {
  alignas(64) float tile[kMaxTileRows * kP];
  const int64_t groups = (count + tiles.max_rows - 1) / tiles.max_rows;
  // Each tile asks for its share of the next panel, so that the reads go
  // on through all of them rather than during the first alone.
  const int64_t next_stride = (kP + groups - 1) / groups;
  for (int64_t p = first; p < last; ++p) {
    const T* next = w.panel(p + 1 < w.panels() ? p + 1 : p);
    const int64_t width = std::min(kP, w.rows() - p * kP);
    int64_t r0 = begin;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t rows = (begin + count - r0) / (groups - g);
      const T* next_part = next + g * x.cols * kP / groups / 16 * 16;
      tiles.kernels[rows - 1](w.panel(p), next_part, next_stride, x.cols, x.row(r0), x.ld, tile);
      write_tile(tile, out.rows_slice(r0, rows).cols_slice(p * kP, width), accumulate);
      r0 += rows;
    }
  }
}

template <typename T>
void linear_using(VectorIsa isa, ConstView x, const BasicPanelMatrix<T>& w, View out,
                  bool accumulate) {
  KVRAG_CHECK(x.cols == w.cols() && out.rows == x.rows && out.cols == w.rows(), kInternal,
              "linear: x [", x.rows, ", ", x.cols, "] · w [", w.rows(), ", ", w.cols(), "]ᵀ into [",
              out.rows, ", ", out.cols, "]");
  if (x.rows == 0 || w.rows() == 0) return;
  const TileKernels<T>& tiles = tiles_for<T>(isa);
  const int64_t row_bytes = std::max<int64_t>(1, x.cols) * int64_t{sizeof(float)};
  const int64_t block = std::max(tiles.max_rows, kRowBlockBytes / row_bytes);
  const int64_t panel_work = x.rows * std::max<int64_t>(1, x.cols) * kP;
  const int64_t grain = std::max<int64_t>(1, kParallelMinMultiplyAdds / panel_work);
  parallel_for(w.panels(), grain, [&](int64_t first, int64_t last) {
    for (int64_t r0 = 0; r0 < x.rows; r0 += block) {
      panels_times_rows(tiles, x, r0, std::min(block, x.rows - r0), w, first, last, out,
                        accumulate);
    }
  });
}

constexpr size_t kHugePageBytes = size_t{2} << 20;
constexpr size_t kPageBytes = size_t{4} << 10;

size_t round_up(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

// Fresh pages from the kernel, starting on a 2 MiB boundary and advised
// as transparent huge pages before anything touches them. Not from
// malloc: its heap hands back memory a freed temporary already faulted in
// as 4 KiB pages, which the advice does not convert — 40 % of T5-base's
// panels (1 GB of two models' 2.3) stayed in 4 KiB pages so, and a
// stream over such pages after other work is slower (scratch harness, 512
// MiB read after a 300 ms sleep: 17-21 ms in 4 KiB pages, 12.5-16.7 in
// huge pages, 11 warm either way).
void* map_huge_aligned(size_t bytes) {
  const size_t mapped = round_up(bytes, kPageBytes);
  void* raw = mmap(nullptr, mapped + kHugePageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = round_up(start, kHugePageBytes);
  if (aligned > start) munmap(raw, aligned - start);
  const size_t tail = start + mapped + kHugePageBytes - (aligned + mapped);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + mapped), tail);
  // Advice only: where the kernel has no transparent huge pages the
  // mapping stays in 4 KiB pages.
  madvise(reinterpret_cast<void*>(aligned), mapped, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

template <typename T>
T* BasicPanelMatrix<T>::PanelAllocator::allocate(size_t n) {
  const size_t bytes = n * sizeof(T);
  if (bytes >= kHugePageBytes) return static_cast<T*>(map_huge_aligned(bytes));
  return static_cast<T*>(::operator new (bytes, std::align_val_t{64}));
}

template <typename T>
void BasicPanelMatrix<T>::PanelAllocator::deallocate(T* p, size_t n) {
  const size_t bytes = n * sizeof(T);
  if (bytes >= kHugePageBytes) {
    munmap(p, round_up(bytes, kPageBytes));
    return;
  }
  ::operator delete (p, std::align_val_t{64});
}

VectorIsa widest_vector_isa() {
#if defined(__x86_64__)
  if (cpu_has_avx512()) return VectorIsa::kAvx512;
  if (cpu_has_avx2()) return VectorIsa::kAvx2;
#endif
  return VectorIsa::kPortable;
}

namespace {

// v as T stores it. binary16 must hold it: rounding past ±65504 gives
// ±inf, and a weight of inf would turn the products into NaN.
template <typename T>
T stored(float v, const ConstView& w, int64_t i, int64_t k) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    const uint16_t h = float_to_half(v);
    KVRAG_CHECK(std::isfinite(half_to_float(h)) || !std::isfinite(v), kInvalidArgument,
                "weight value ", v, " at (", i, ", ", k, ") of a (", w.rows, ", ", w.cols,
                ") matrix is beyond binary16's range (±65504): load this model with "
                "--weights f32 or int8");
    return h;
  }
}

}  // namespace

template <typename T>
BasicPanelMatrix<T>::BasicPanelMatrix(ConstView w)
    : rows_(w.rows), cols_(w.cols), values_(static_cast<size_t>(panels() * kP * w.cols), T{}) {
  if (values_.empty()) return;  // no columns: nothing to place, and no storage to point into
  for (int64_t i = 0; i < rows_; ++i) {
    T* dst = values_.data() + (i / kP) * kP * cols_ + i % kP;
    const float* src = w.row(i);
    for (int64_t k = 0; k < cols_; ++k) dst[k * kP] = stored<T>(src[k], w, i, k);
  }
}

template <typename T>
void BasicPanelMatrix<T>::row(int64_t i, float* out) const {
  if (values_.empty()) return;
  const T* src = panel(i / kP) + i % kP;
  for (int64_t k = 0; k < cols_; ++k) out[k] = widened(src[k * kP]);
}

template <typename T>
Tensor BasicPanelMatrix<T>::unpacked() const {
  Tensor w(rows_, cols_);
  for (int64_t i = 0; i < rows_; ++i) row(i, w.row(i));
  return w;
}

template class BasicPanelMatrix<float>;
template class BasicPanelMatrix<uint16_t>;

namespace {

template <typename T>
void checked_linear_with(VectorIsa isa, ConstView x, const BasicPanelMatrix<T>& w, View out,
                         bool accumulate) {
  KVRAG_CHECK(isa <= widest_vector_isa(), kInternal, "linear_with: this CPU lacks the ",
              isa == VectorIsa::kAvx512 ? "AVX-512" : "AVX2", " it was asked to use");
  linear_using(isa, x, w, out, accumulate);
}

}  // namespace

void linear_with(VectorIsa isa, ConstView x, const PanelMatrix& w, View out, bool accumulate) {
  checked_linear_with(isa, x, w, out, accumulate);
}

void linear_with(VectorIsa isa, ConstView x, const HalfPanelMatrix& w, View out, bool accumulate) {
  checked_linear_with(isa, x, w, out, accumulate);
}

void linear(ConstView x, const PanelMatrix& w, View out, bool accumulate) {
  static const VectorIsa widest = widest_vector_isa();
  linear_using(widest, x, w, out, accumulate);
}

void linear(ConstView x, const HalfPanelMatrix& w, View out, bool accumulate) {
  static const VectorIsa widest = widest_vector_isa();
  linear_using(widest, x, w, out, accumulate);
}

}  // namespace kvrag
