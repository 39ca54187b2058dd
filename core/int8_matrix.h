// Weight matrices in int8 with one float32 scale per row — per output
// channel of a PyTorch Linear's (out, in) weight — and the products that
// read them. Symmetric: w[i][j] ≈ q[i][j] · scale[i] with
// scale[i] = max_j |w[i][j]| / 127 and |q| ≤ 127, so a stacked projection
// (q/k/v, gated wi_0/wi_1) quantised after stacking keeps each output's scale.
//
// Products with a few activation rows (a decoder step, the beams of one
// question, a question's encoding) quantise each activation row to int8
// with its own scale and sum q_w · q_x exactly in int32 (AVX-512 VNNI's byte
// dot products; AVX2: the sign/maddubs/madd trick of llama.cpp's q8
// kernels), reading every weight row once for all activation rows: the step
// is bound by reading weights, and these are a quarter of the float32
// bytes. Products with more rows (the encoder over chunks, long prompts) go
// through oneDNN's int8 matmul where the CPU has VNNI — the same int32 sums,
// 6-8× sgemm's speed on this machine (bench/README.md) — and elsewhere
// dequantise tiles of weight rows to float32 and run OpenBLAS sgemm on them.
// oneDNN is not used without VNNI: its older int8 kernels sum pairs of
// products in int16, which saturates at these magnitudes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace kvrag {

struct Int8Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int8_t> q;      // (rows, cols) row-major, every |q| ≤ 127
  std::vector<float> scales;  // (rows): row i is q[i, :] · scales[i]

  const int8_t* row(int64_t i) const { return q.data() + i * cols; }
  int64_t bytes() const { return static_cast<int64_t>(q.size() + scales.size() * sizeof(float)); }
};

// Quantises x[0 .. cols) symmetrically: q[j] = round(x[j] / scale) with
// scale = max |x| / 127, returned (0 for a row of zeros, whose q are 0).
float quantize_row(const float* x, int64_t cols, int8_t* q);

// Every row of `w` quantised with quantize_row: w: (rows, cols), any ld.
Int8Matrix quantize_int8(ConstView w);

// Rows [begin, begin + out.rows) of `m` as float32 into out: (n, m.cols).
void dequantize_rows(const Int8Matrix& m, int64_t begin, View out);

// The longest row an int8 dot product sums exactly in int32:
// 127 · 127 · cols < 2^31.
constexpr int64_t kMaxInt8Cols = 133'000;

// Dot products of a run of int8 weight rows with a few int8 activation rows.
struct Int8Kernels {
  const char* name;  // "avx512-vnni", "avx2" or "portable"
  // out[o · x_rows + r] = Σ_j w[o · w_stride + j] · x[r · x_stride + j] for
  // o < w_rows and r < x_rows, exact in int32. Every value in [-127, 127];
  // cols ≤ kMaxInt8Cols.
  void (*dots)(const int8_t* w, int64_t w_stride, int64_t w_rows, const int8_t* x, int64_t x_stride,
               int64_t x_rows, int64_t cols, int32_t* out);
};

// The fastest kernels this CPU runs (AVX2 when it has it, chosen once at run
// time), the portable ones, and the AVX2 ones or nullptr on a CPU without
// them (so that tests and benchmarks can run both).
const Int8Kernels& int8_kernels();
const Int8Kernels& portable_int8_kernels();
const Int8Kernels* avx2_int8_kernels();
const Int8Kernels* avx512_vnni_int8_kernels();

// Where oneDNN runs (VNNI) and the direct kernels are AVX2's, products of
// more than kInt8DirectMaxRowsBesideOnednn rows go through it, fewer read
// the int8 weights directly: BM_LinearInt8* medians of 3-5 on the quiet 2-core
// machine, direct / oneDNN, through 64 MiB of int8 (beyond the caches: a
// decoder step) 0.97 / 1.47 ms for 1 row, 1.36 / 3.70 for 2, 3.90 / 4.22
// for 8; through T5-base's gated wi (6144, 768; cached) 0.302 / 0.230 ms
// for 8 rows, 1.55 / 0.52 for 32, and for 1024 rows 62.4 / 12.3 ms against
// 53.4 dequantised and 49.0 with f32 weights (bench/README.md).
// Elsewhere, up to kInt8DirectMaxRows rows read the int8 weights directly
// (linear_int8_direct), more go through dequantised tiles and sgemm
// (linear_int8_dequantized): on a loaded run of the same, direct /
// dequantised / f32 took 0.27 / 9.9 / 1.13 ms for 1 row, 4.5-6.6 / 9.4-23 /
// 9.0 ms for 32 and 55-65 / 51 / 49 ms for 256.
constexpr int64_t kInt8DirectMaxRowsBesideOnednn = 8;
constexpr int64_t kInt8DirectMaxRows = 32;
// Where the AVX-512 VNNI kernels run, up to this many rows read the int8
// weights directly beside oneDNN: oneDNN read weights that come from
// memory slowly (it packs them per call, without prefetching), so a
// question's encoding through T5-base, 16 rows, took 7.8-8.1 ms through it
// and 5.1-5.8 ms direct (BM_Encoder/t5-base/16/int8, three alternated
// pairs), where from cache the two were even at 16 rows (0.190 / 0.195 ms
// through T5-base's gated wi) and oneDNN ahead at 32 (0.409 / 0.315) and
// 256 (2.69 / 2.00).
constexpr int64_t kInt8VnniDirectMaxRowsBesideOnednn = 32;
// The most rows linear reads directly where oneDNN runs: one of the two above.
int64_t direct_max_rows_beside_onednn();

// out = x · wᵀ with w dequantised (out += … with accumulate): a PyTorch
// nn.Linear without bias over int8 weights. x: (n, w.cols), out: (n, w.rows).
// Picks linear_int8_direct, linear_int8_onednn or linear_int8_dequantized
// by n and the CPU. Shapes are checked (Error(kInternal)).
void linear(ConstView x, const Int8Matrix& w, View out, bool accumulate = false);

// The two ways linear computes it, for tests and benchmarks. Direct:
// out[r][o] = scale_w[o] · scale_x[r] · Σ_j q_w[o][j] · q_x[r][j], the x
// rows quantised with quantize_row, the weight rows split over
// compute_threads(). Dequantized: float32 tiles of weight rows through gemm
// (x stays float32, so it differs from direct by x's quantisation only).
void linear_int8_direct(ConstView x, const Int8Matrix& w, View out, bool accumulate,
                        const Int8Kernels& kernels = int8_kernels());
void linear_int8_dequantized(ConstView x, const Int8Matrix& w, View out, bool accumulate);

// Runs two small products (of direct_max_rows_beside_onednn() + 1 and 64
// rows) through oneDNN for each input width in `widths` (a model's d_model,
// inner_dim and d_ff): its first products in a process, per width, build
// the primitive and generate its kernels, so that loading an int8 model pays
// that rather than the first answer (a fresh process's first T5-base answer
// took 37-39 ms with one width prepared, 52 ms with none; its encoding 40 ms
// against 17 ms warm until every width was). Nothing without VNNI.
void prepare_int8_products(std::span<const int64_t> widths);

// Whether linear_int8_onednn runs here: oneDNN finds VNNI (AVX-512 or AVX)
// on this CPU.
bool onednn_int8_supported();

// Direct's arithmetic with the int32 sums computed by oneDNN's s8 · s8
// matmul: equal to linear_int8_direct to the bit. Error(kInternal) where
// onednn_int8_supported() is false.
void linear_int8_onednn(ConstView x, const Int8Matrix& w, View out, bool accumulate);

}  // namespace kvrag
