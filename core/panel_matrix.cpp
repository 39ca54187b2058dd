#include "core/panel_matrix.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

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
//
// x is float32, or for bfloat16 panels its rows rounded to bfloat16 in
// pairs of columns (Input<Bfloat16>: column 2j in the low half of element
// j), and a kernel takes `steps` of a panel's kColumnStep columns.
template <typename T>
struct InputOf {
  using type = float;
};
template <>
struct InputOf<Bfloat16> {
  using type = uint32_t;
};
template <typename T>
using Input = typename InputOf<T>::type;

template <typename T>
using TileKernel = void (*)(const T* panel, const T* next, int64_t next_stride, int64_t steps,
                            const Input<T>* x, int64_t ldx, float* tile);

inline float widened(float v) { return v; }
inline float widened(uint16_t h) { return half_to_float(h); }
inline float widened(Bfloat16 b) { return bf16_to_float(static_cast<uint16_t>(b)); }

// Column b of an input step as float32.
inline float input_value(float x, int) { return x; }
inline float input_value(uint32_t pair, int b) {
  return bf16_to_float(static_cast<uint16_t>(pair >> (16 * b)));
}

template <typename T, int R>
void panel_tile_portable(const T* panel, const T*, int64_t, int64_t steps, const Input<T>* x,
                         int64_t ldx, float* tile) {
  constexpr int64_t kStep = BasicPanelMatrix<T>::kColumnStep;
  float acc[R][kP] = {};
  for (int64_t j = 0; j < steps; ++j) {
    const T* wj = panel + j * kStep * kP;
    for (int r = 0; r < R; ++r) {
      for (int b = 0; b < kStep; ++b) {
        const float xv = input_value(x[r * ldx + j], b);
        for (int c = 0; c < kP; ++c) acc[r][c] += xv * widened(wj[c * kStep + b]);
      }
    }
  }
  for (int r = 0; r < R; ++r) std::copy(acc[r], acc[r] + kP, tile + r * kP);
}

#if defined(__x86_64__)
// _mm_prefetch's cache level: an enum in GCC, an int in Clang.
using PrefetchHint = decltype(_MM_HINT_T0);

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

template <typename T, int R, PrefetchHint kHint>
KVRAG_AVX512 void panel_tile_512(const T* panel, const T* next, int64_t next_stride, int64_t cols,
                                 const float* x, int64_t ldx, float* tile) {
  __m512 acc[R][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < cols; ++k) {
    const T* wk = panel + k * kP;
    // A panel's row of 32 values: two cache lines of float32, one of binary16.
    _mm_prefetch(reinterpret_cast<const char*>(next + k * next_stride), kHint);
    if constexpr (sizeof(T) == sizeof(float)) {
      _mm_prefetch(reinterpret_cast<const char*>(next + k * next_stride + 16), kHint);
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

// bfloat16 panels without AVX512-BF16: each step's pairs widened to two
// float32 vectors (a bfloat16 is float32's top half: the low one shifted
// up, the high one masked), then two FMAs, the panel's halves one after
// the other as panel_tile_256 takes them. Four rows: 8 accumulators, 4
// weight vectors, 2 x values and the mask fill AVX2's 16 registers.
template <int R>
KVRAG_AVX2 void bf16_tile_256(const Bfloat16* panel, const Bfloat16* next, int64_t next_stride,
                              int64_t steps, const uint32_t* x, int64_t ldx, float* tile) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int h = 0; h < 2; ++h) {
    __m256 acc[R][2];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < steps; ++j) {
      const Bfloat16* wj = panel + j * 2 * kP + 32 * h;
      _mm_prefetch(reinterpret_cast<const char*>(next + (2 * j + h) * next_stride), _MM_HINT_T1);
      const __m256i v0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wj));
      const __m256i v1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wj + 16));
      const __m256 even0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));
      const __m256 odd0 = _mm256_castsi256_ps(_mm256_and_si256(v0, high));
      const __m256 even1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
      const __m256 odd1 = _mm256_castsi256_ps(_mm256_and_si256(v1, high));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const uint32_t pair = x[r * ldx + j];
        const __m256 xe = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(pair << 16)));
        const __m256 xo =
            _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(pair & 0xffff0000u)));
        acc[r][0] = _mm256_fmadd_ps(odd0, xo, _mm256_fmadd_ps(even0, xe, acc[r][0]));
        acc[r][1] = _mm256_fmadd_ps(odd1, xo, _mm256_fmadd_ps(even1, xe, acc[r][1]));
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm256_store_ps(tile + r * kP + 16 * h, acc[r][0]);
      _mm256_store_ps(tile + r * kP + 16 * h + 8, acc[r][1]);
    }
  }
}

// bfloat16 panels with AVX512-BF16: a step's 32 pairs are two vectors, and
// each VDPBF16PS adds the products of a pair to 16 float32 sums.
template <int R, PrefetchHint kHint>
KVRAG_AVX512_BF16 void bf16_tile_512(const Bfloat16* panel, const Bfloat16* next,
                                     int64_t next_stride, int64_t steps, const uint32_t* x,
                                     int64_t ldx, float* tile) {
  __m512 acc[R][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t j = 0; j < steps; ++j) {
    const Bfloat16* wj = panel + j * 2 * kP;
    // A step's 64 values: two cache lines.
    _mm_prefetch(reinterpret_cast<const char*>(next + 2 * j * next_stride), kHint);
    _mm_prefetch(reinterpret_cast<const char*>(next + 2 * j * next_stride + 32), kHint);
    const __m512bh w0 = (__m512bh)_mm512_load_si512(wj);
    const __m512bh w1 = (__m512bh)_mm512_load_si512(wj + 32);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512bh xb = (__m512bh)_mm512_set1_epi32(static_cast<int>(x[r * ldx + j]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], w0, xb);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], w1, xb);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_store_ps(tile + r * kP, acc[r][0]);
    _mm512_store_ps(tile + r * kP + 16, acc[r][1]);
  }
}
#endif

// One instruction set's tile kernels, for 1 to max_rows rows of x: those
// a product uses when a panel goes through at most kFewTiles tiles, and
// those for more.
//
// The AVX-512 kernels of the first ask for the next panel into L1
// (_MM_HINT_T0), those of the second into L2 (_MM_HINT_T1). With one or
// two tiles (a question's rows, a decoder step's) nothing else waits in
// L1; BM_Encoder/t5-base-gated/16/cold, T1 / T0 in alternated runs of one
// binary, medians of 5-8: bf16 7.28 / 7.12, 7.21 / 6.85, 7.73 / 7.18,
// 7.53 / 6.84, 7.99 / 7.04, 8.03 / 7.42, 7.18 / 6.85 ms; f16 faster in 4
// of 7 pairs (−6 % to +1.3 %); f32 13.1 / 12.2, 12.6 / 12.2, 12.8 / 12.3.
// With many tiles the next panel taken into L1 evicts the one the other
// tiles still read (an earlier build with T0 for all:
// BM_LinearBf16/6144/768/256 2.70-2.83 → 2.96-2.99 ms). The AVX2 and
// portable kernels (not measured so) are the same in both.
constexpr int64_t kFewTiles = 2;

template <typename T>
using KernelSet = std::array<TileKernel<T>, kMaxTileRows>;

template <typename T>
struct TileKernels {
  int64_t max_rows;
  KernelSet<T> few_tiles;
  KernelSet<T> many_tiles;
  TileKernel<T> kernel(int64_t rows, int64_t groups) const {
    return groups <= kFewTiles ? few_tiles[rows - 1] : many_tiles[rows - 1];
  }
};

// Kernels that ask for the next panel alike however many tiles share it.
template <typename T>
constexpr TileKernels<T> one_set(int64_t max_rows, const KernelSet<T>& kernels) {
  return {max_rows, kernels, kernels};
}

// The portable kernels take four rows: more accumulators than that spill
// where the compiler has only SSE2's 16 registers.
template <typename T>
constexpr TileKernels<T> kPortableTiles = one_set<T>(4, {panel_tile_portable<T, 1>,
                                                         panel_tile_portable<T, 2>,
                                                         panel_tile_portable<T, 3>,
                                                         panel_tile_portable<T, 4>});
#if defined(__x86_64__)
template <typename T>
constexpr TileKernels<T> kTiles256 = one_set<T>(6, {panel_tile_256<T, 1>, panel_tile_256<T, 2>,
                                                    panel_tile_256<T, 3>, panel_tile_256<T, 4>,
                                                    panel_tile_256<T, 5>, panel_tile_256<T, 6>});

// panel_tile_512 for 1 to kMaxTileRows rows, asking for the next panel with `kHint`.
template <typename T, PrefetchHint kHint, size_t... kRows>
constexpr KernelSet<T> tiles_512(std::index_sequence<kRows...>) {
  return {panel_tile_512<T, kRows + 1, kHint>...};
}
template <PrefetchHint kHint, size_t... kRows>
constexpr KernelSet<Bfloat16> bf16_tiles_512(std::index_sequence<kRows...>) {
  return {bf16_tile_512<kRows + 1, kHint>...};
}
template <typename T>
constexpr TileKernels<T> kTiles512{
    kMaxTileRows, tiles_512<T, _MM_HINT_T0>(std::make_index_sequence<kMaxTileRows>()),
    tiles_512<T, _MM_HINT_T1>(std::make_index_sequence<kMaxTileRows>())};
#endif

template <typename T>
const TileKernels<T>& tiles_for(VectorIsa isa) {
#if defined(__x86_64__)
  if (isa >= VectorIsa::kAvx512) return kTiles512<T>;
  if (isa == VectorIsa::kAvx2) return kTiles256<T>;
#endif
  return kPortableTiles<T>;
}

#if defined(__x86_64__)
constexpr TileKernels<Bfloat16> kBf16Tiles256 =
    one_set<Bfloat16>(4, {bf16_tile_256<1>, bf16_tile_256<2>, bf16_tile_256<3>, bf16_tile_256<4>});
constexpr TileKernels<Bfloat16> kBf16Tiles512{
    kMaxTileRows, bf16_tiles_512<_MM_HINT_T0>(std::make_index_sequence<kMaxTileRows>()),
    bf16_tiles_512<_MM_HINT_T1>(std::make_index_sequence<kMaxTileRows>())};
#endif

// AVX-512 without its BF16 extension (Skylake to Ice Lake) widens
// bfloat16 through the AVX2 kernels.
template <>
const TileKernels<Bfloat16>& tiles_for(VectorIsa isa) {
#if defined(__x86_64__)
  if (isa == VectorIsa::kAvx512Bf16) return kBf16Tiles512;
  if (isa >= VectorIsa::kAvx2) return kBf16Tiles256;
#endif
  return kPortableTiles<Bfloat16>;
}

// out (+)= the first out.cols columns of a tile of out.rows rows.
void write_tile(const float* tile, View out, bool accumulate) {
  for (int64_t r = 0; r < out.rows; ++r) {
    float* y = out.row(r);
    const float* t = tile + r * kP;
    for (int64_t c = 0; c < out.cols; ++c) y[c] = accumulate ? y[c] + t[c] : t[c];
  }
}

// x as a tile kernel reads it: rows of `steps` Input<T> values, ld apart.
template <typename T>
struct InputRows {
  const Input<T>* data;
  int64_t ld;
  int64_t steps;
  const Input<T>* row(int64_t r) const { return data + r * ld; }
};

// Rows [begin, begin + count) of x through panels [first, last) of w.
// The rows are split evenly into as few tiles as the kernels allow (16
// rows: 8 + 8, not 12 + 4), and each panel goes through all of them while
// it sits in L2.
template <typename T>
void panels_times_rows(const TileKernels<T>& tiles, InputRows<T> x, int64_t begin, int64_t count,
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
      const T* next_part = next + g * w.panel_values() / groups / 16 * 16;
      tiles.kernel(rows, groups)(w.panel(p), next_part, next_stride, x.steps, x.row(r0), x.ld,
                                 tile);
      write_tile(tile, out.rows_slice(r0, rows).cols_slice(p * kP, width), accumulate);
      r0 += rows;
    }
  }
}

#if defined(__x86_64__)
// Rounds 32 values at a time where float_to_bf16 rounds one.
KVRAG_AVX512_BF16 void row_to_bf16_pairs_512(const float* x, int64_t cols, uint32_t* out) {
  for (int64_t k = 0; k < cols; k += 32) {
    const int64_t left = std::min<int64_t>(32, cols - k);
    const __mmask16 low = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
    const __mmask16 high = left <= 16 ? 0 : static_cast<__mmask16>((1ull << (left - 16)) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(low, x + k);
    const __m512 hi = _mm512_maskz_loadu_ps(high, x + k + 16);
    const __m512i pairs = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    _mm512_mask_storeu_epi32(out + k / 2, static_cast<__mmask16>((1u << ((left + 1) / 2)) - 1),
                             pairs);
  }
}
#endif

// x's rows rounded to bfloat16 pairs (an odd last column paired with a
// zero) into `pairs`: the input of a bfloat16 product.
InputRows<Bfloat16> rows_to_bf16_pairs(VectorIsa isa, ConstView x, std::vector<uint32_t>& pairs) {
  const int64_t steps = (x.cols + 1) / 2;
  pairs.resize(static_cast<size_t>(x.rows * steps));
  for (int64_t r = 0; r < x.rows; ++r) {
    uint32_t* out = pairs.data() + r * steps;
#if defined(__x86_64__)
    if (isa == VectorIsa::kAvx512Bf16) {
      row_to_bf16_pairs_512(x.row(r), x.cols, out);
      continue;
    }
#endif
    for (int64_t j = 0; j < steps; ++j) {
      const int64_t k = 2 * j;
      const uint32_t second = k + 1 < x.cols ? float_to_bf16(x.row(r)[k + 1]) : 0u;
      out[j] = float_to_bf16(x.row(r)[k]) | (second << 16);
    }
  }
  return {pairs.data(), steps, steps};
}

// out (+)= `rows` rows of x through w, the panels shared among the threads.
template <typename T>
void panels_times_input(const TileKernels<T>& tiles, InputRows<T> x, int64_t rows,
                        const BasicPanelMatrix<T>& w, View out, bool accumulate) {
  const int64_t row_bytes = std::max<int64_t>(1, x.steps) * int64_t{sizeof(Input<T>)};
  const int64_t block = std::max(tiles.max_rows, kRowBlockBytes / row_bytes);
  const int64_t panel_work = rows * std::max<int64_t>(1, w.cols()) * kP;
  const int64_t grain = std::max<int64_t>(1, kParallelMinMultiplyAdds / panel_work);
  parallel_for(w.panels(), grain, [&](int64_t first, int64_t last) {
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      panels_times_rows(tiles, x, r0, std::min(block, rows - r0), w, first, last, out, accumulate);
    }
  });
}

template <typename T>
void linear_using(VectorIsa isa, ConstView x, const BasicPanelMatrix<T>& w, View out,
                  bool accumulate) {
  KVRAG_CHECK(x.cols == w.cols() && out.rows == x.rows && out.cols == w.rows(), kInternal,
              "linear: x [", x.rows, ", ", x.cols, "] · w [", w.rows(), ", ", w.cols(), "]ᵀ into [",
              out.rows, ", ", out.cols, "]");
  if (x.rows == 0 || w.rows() == 0) return;
  const TileKernels<T>& tiles = tiles_for<T>(isa);
  if constexpr (std::is_same_v<T, Bfloat16>) {
    // The calling thread's own: linear runs on several request threads at once.
    thread_local std::vector<uint32_t> pairs;
    panels_times_input(tiles, rows_to_bf16_pairs(isa, x, pairs), x.rows, w, out, accumulate);
  } else {
    panels_times_input(tiles, InputRows<T>{x.data, x.ld, x.cols}, x.rows, w, out, accumulate);
  }
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
  if (cpu_has_avx512_bf16()) return VectorIsa::kAvx512Bf16;
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
    constexpr bool kBf16 = std::is_same_v<T, Bfloat16>;
    const T h = kBf16 ? T(float_to_bf16(v)) : T(float_to_half(v));
    KVRAG_CHECK(std::isfinite(widened(h)) || !std::isfinite(v), kInvalidArgument, "weight value ",
                v, " at (", i, ", ", k, ") of a (", w.rows, ", ", w.cols, ") matrix is beyond ",
                kBf16 ? "bfloat16's range (±3.39e38)" : "binary16's range (±65504)",
                ": load this model with --weights f32 or int8");
    return h;
  }
}

}  // namespace

template <typename T>
BasicPanelMatrix<T>::BasicPanelMatrix(ConstView w)
    : rows_(w.rows), cols_(w.cols), values_(static_cast<size_t>(panels() * panel_values()), T{}) {
  if (values_.empty()) return;  // no columns: nothing to place, and no storage to point into
  for (int64_t i = 0; i < rows_; ++i) {
    T* dst = values_.data() + (i / kP) * panel_values();
    const float* src = w.row(i);
    for (int64_t k = 0; k < cols_; ++k) dst[offset(i % kP, k)] = stored<T>(src[k], w, i, k);
  }
}

template <typename T>
void BasicPanelMatrix<T>::row(int64_t i, float* out) const {
  if (values_.empty()) return;
  const T* src = panel(i / kP);
  for (int64_t k = 0; k < cols_; ++k) out[k] = widened(src[offset(i % kP, k)]);
}

template <typename T>
Tensor BasicPanelMatrix<T>::unpacked() const {
  Tensor w(rows_, cols_);
  for (int64_t i = 0; i < rows_; ++i) row(i, w.row(i));
  return w;
}

template class BasicPanelMatrix<float>;
template class BasicPanelMatrix<uint16_t>;
template class BasicPanelMatrix<Bfloat16>;

namespace {

template <typename T>
void checked_linear_with(VectorIsa isa, ConstView x, const BasicPanelMatrix<T>& w, View out,
                         bool accumulate) {
  KVRAG_CHECK(isa <= widest_vector_isa(), kInternal, "linear_with: this CPU lacks the ",
              isa == VectorIsa::kAvx512Bf16 ? "AVX512-BF16"
              : isa == VectorIsa::kAvx512   ? "AVX-512"
                                            : "AVX2",
              " it was asked to use");
  linear_using(isa, x, w, out, accumulate);
}

// linear through the widest instruction set this CPU runs, found once.
template <typename T>
void linear_widest(ConstView x, const BasicPanelMatrix<T>& w, View out, bool accumulate) {
  static const VectorIsa widest = widest_vector_isa();
  linear_using(widest, x, w, out, accumulate);
}

}  // namespace

void linear_with(VectorIsa isa, ConstView x, const PanelMatrix& w, View out, bool accumulate) {
  checked_linear_with(isa, x, w, out, accumulate);
}

void linear_with(VectorIsa isa, ConstView x, const HalfPanelMatrix& w, View out, bool accumulate) {
  checked_linear_with(isa, x, w, out, accumulate);
}

void linear_with(VectorIsa isa, ConstView x, const Bf16PanelMatrix& w, View out, bool accumulate) {
  checked_linear_with(isa, x, w, out, accumulate);
}

void linear(ConstView x, const PanelMatrix& w, View out, bool accumulate) {
  linear_widest(x, w, out, accumulate);
}

void linear(ConstView x, const HalfPanelMatrix& w, View out, bool accumulate) {
  linear_widest(x, w, out, accumulate);
}

void linear(ConstView x, const Bf16PanelMatrix& w, View out, bool accumulate) {
  linear_widest(x, w, out, accumulate);
}

}  // namespace kvrag
