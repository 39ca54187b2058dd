// Google Benchmark microbenchmarks of the T5 engine on random-weight models of
// real T5 shapes, with the two machine figures they are read against:
//   BM_Sgemm/<m>/<n>/<k>          the sgemm rate kvrag::gemm reaches (compute roof)
//   BM_StreamRead/<MiB>           the rate a large buffer can be read (memory roof)
//   BM_Gemv/<rows>/<cols>         one row through kvrag::linear: weights streamed
//   BM_Sgemv/<rows>/<cols>        the same through cblas_sgemv, for comparison
//   BM_Int8Gemv/<rows>/<cols>     one row through int8 weights (AVX2 kernel;
//   BM_Int8GemvPortable            and the portable one): GB/s of int8 bytes
//   BM_Linear{F32,F32Sgemm,F32Avx2,Int8Direct,Int8Dequantized,Int8Onednn}/<out>/<in>/<n>
//                                 n rows through one projection: where the
//                                 int8 product should switch paths
//   BM_Encoder/<shape>/<tokens>[/cold][/<weights>]  encoder throughput, achieved
//                                 GFLOP/s; cold: caches emptied before each (a
//                                 cached answer's case); weights f16, bf16 or int8
//   BM_CrossAttention/<mem>/<dtype>[/chunks-64]  one query's cross-attention
//                                 over every layer of a T5-base-width memory,
//                                 one block or 64-token chunks: GB/s of K/V
//   BM_DecoderBatchStep/t5-base/<batch>  one step of <batch> sequences decoded
//                                 together, each over its own memory
//   BM_DecoderStep/<shape>/<mem>[/kv-f16][/<weights>]  one decoded token over
//                                 a <mem>-token memory; the memory f32, or f16
//                                 as the RAM cache holds an f16 index's K/V
//   shapes: t5-small and t5-base in T5 v1.0's layout; t5-base-gated (cold
//   encoder, 3,000-token step) is the model `kvrag bench --random-models
//   t5-base` times, the two parts of its cached answer at k = 50
// How to run and read them: bench/README.md. Rate counters named "GFLOP/s" and
// "GB/s" hold values in those units (1e9 per second), so the console shows
// e.g. "GFLOP/s=41.2/s" and JSON/CSV hold 41.2.

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/rag_bench.h"
#include "bench/random_model.h"
#include "core/int8_matrix.h"
#include "core/ops.h"
#include "core/packed_rows.h"
#include "core/panel_matrix.h"
#include "core/tensor.h"
#include "core/weight_matrix.h"
#include "data/kv_blob.h"
#include "decoder/t5_decoder.h"
#include "decoder/t5_model.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_config.h"
#include "encoder/t5_encoder.h"

namespace {

using kvrag::CrossKV;
using kvrag::CrossMemory;
using kvrag::DecoderCache;
using kvrag::DecoderInput;
using kvrag::KvDtype;
using kvrag::T5Config;
using kvrag::T5Decoder;
using kvrag::T5Encoder;
using kvrag::T5Model;
using kvrag::Tensor;
using kvrag::WeightDtype;
using kvrag::bench::t5_shape_config;

constexpr uint64_t kModelSeed = 42;
constexpr int64_t kDecoderPrefix = 16;  // self-attention cache length before the timed step

// A counter of `per_iteration` units per iteration reported per second and
// scaled by 1e-9, so "GFLOP/s" and "GB/s" hold values in those units.
benchmark::Counter giga_rate(double per_iteration, const benchmark::State& state) {
  return benchmark::Counter(per_iteration * 1e-9 * static_cast<double>(state.iterations()),
                            benchmark::Counter::kIsRate);
}

// A (rows, cols) matrix of deterministic values in [-0.5, 0.5). Speed does not
// depend on the values (no denormals), and this fills 256 MiB in well under a
// second where std::normal_distribution would not.
Tensor filled(int64_t rows, int64_t cols, uint64_t seed) {
  Tensor t(rows, cols);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < t.size(); ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t.data()[i] = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) - 0.5f;
  }
  return t;
}

// `count` token ids spread over the vocabulary.
std::vector<int32_t> token_ids(int64_t count, int64_t vocab, int64_t salt) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < count; ++i)
    ids.push_back(static_cast<int32_t>((i * 7919 + salt) % vocab));
  return ids;
}

// ---------------------------------------------------------------------------
// Models

// T5 v1.0 layouts of two sizes, and kBaseGated: the `kvrag bench
// --random-models t5-base` model (gated GELU, untied head), whose cached
// answers the benchmark's memory bound is about.
enum class Shape { kSmall, kBase, kBaseGated };

const char* shape_name(Shape shape) {
  switch (shape) {
    case Shape::kSmall:
      return "t5-small";
    case Shape::kBase:
      return "t5-base";
    case Shape::kBaseGated:
      return "t5-base-gated";
  }
  return "";
}

T5Config shape_config(Shape shape) {
  return shape == Shape::kBaseGated ? kvrag::bench::random_shape_config("t5-base")
                                    : t5_shape_config(shape_name(shape));
}

// Each shape's model is built on first use and kept for the process:
// make_random_t5_model takes seconds for T5-base, and Google Benchmark calls a
// benchmark function several times while it settles the iteration count. The
// benchmarks run on the main thread only, so the map needs no lock.
std::shared_ptr<const T5Model> random_model(Shape shape, WeightDtype weights) {
  static std::map<std::pair<Shape, WeightDtype>, std::shared_ptr<const T5Model>> models;
  std::shared_ptr<const T5Model>& model = models[{shape, weights}];
  if (!model) {
    model = kvrag::make_random_t5_model(shape_config(shape), kModelSeed, weights);
  }
  return model;
}

// ---------------------------------------------------------------------------
// Analytic FLOP and byte counts (multiply-add = 2 FLOPs; norms, softmax,
// activations and the embedding lookup are left out as they are O(d) a token).

// One token through one encoder layer attending over `seq_len` positions.
double encoder_layer_flops_per_token(const T5Config& c, int64_t seq_len) {
  const double d = static_cast<double>(c.d_model);
  const double inner = static_cast<double>(c.inner_dim());
  const double ff = static_cast<double>(c.d_ff);
  const double gate = c.is_gated_act ? 2.0 : 1.0;
  return 2 * d * 3 * inner                                // q, k, v
         + 2 * inner * d                                  // o
         + 2 * d * ff * gate                              // wi (wi_0 and wi_1 when gated)
         + 2 * ff * d                                     // wo
         + 2 * 2 * static_cast<double>(seq_len) * inner;  // q·kᵀ and p·v
}

// One token through the whole decoder (every layer and the LM head), with
// `self_len` positions in the self-attention cache after appending it and
// `memory_tokens` positions of cross-attention memory.
double decoder_step_flops(const T5Config& c, int64_t self_len, int64_t memory_tokens) {
  const double d = static_cast<double>(c.d_model);
  const double inner = static_cast<double>(c.inner_dim());
  const double ff = static_cast<double>(c.d_ff);
  const double gate = c.is_gated_act ? 2.0 : 1.0;
  const double layer = 2 * d * 3 * inner                                     // self q, k, v
                       + 2 * inner * d                                       // self o
                       + 2 * 2 * static_cast<double>(self_len) * inner       // self attention
                       + 2 * d * inner                                       // cross q
                       + 2 * 2 * static_cast<double>(memory_tokens) * inner  // cross attention
                       + 2 * inner * d                                       // cross o
                       + 2 * d * ff * gate + 2 * ff * d;                     // FFN
  return static_cast<double>(c.num_decoder_layers) * layer +
         2 * d * static_cast<double>(c.vocab_size);  // LM head
}

// ---------------------------------------------------------------------------
// Machine roofs

// c (m, n) = a (m, k) · b (n, k)ᵀ through OpenBLAS: the products of a
// projection (x · wᵀ) on row-major weights, the peak kvrag's own panel
// kernels (BM_LinearF32) are held against.
void BM_Sgemm(benchmark::State& state) {
  const int64_t m = state.range(0);
  const int64_t n = state.range(1);
  const int64_t k = state.range(2);
  const Tensor a = filled(m, k, 1);
  const Tensor b = filled(n, k, 2);
  Tensor c(m, n);
  for (auto _ : state) {
    kvrag::gemm(a.view(), false, b.view(), true, c.view());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = giga_rate(2.0 * static_cast<double>(m * n * k), state);
}
BENCHMARK(BM_Sgemm)
    ->Args({512, 2048, 512})
    ->Args({1024, 1024, 1024})
    ->Args({256, 3072, 768})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Reads a buffer far larger than the caches once, split over one thread per
// core (as OpenBLAS splits its kernels): the memory bandwidth a
// weight-streaming decoder step could get at best.
void BM_StreamRead(benchmark::State& state) {
  const int64_t bytes = state.range(0) * (int64_t{1} << 20);
  const int64_t threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const std::vector<uint64_t> words(static_cast<size_t>(bytes) / sizeof(uint64_t), 1);
  for (auto _ : state) benchmark::DoNotOptimize(kvrag::bench::stream_read(words, threads));
  state.counters["GB/s"] = giga_rate(static_cast<double>(bytes), state);
  state.counters["threads"] = static_cast<double>(threads);
}
BENCHMARK(BM_StreamRead)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

// Times `product(x, w, y)`: a (1, cols) x times the transpose of a (rows,
// cols) matrix into a (1, rows) y, with rows and cols the benchmark's
// arguments; w is what `layout` makes of the row-major matrix, before the
// timing. Counts the matrix streamed once and 2 FLOPs per weight per call.
template <typename Layout, typename Product>
void time_gemv(benchmark::State& state, Layout layout, Product product) {
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const auto w = layout(filled(rows, cols, 4));
  const Tensor x = filled(1, cols, 5);
  Tensor y(1, rows);
  for (auto _ : state) {
    product(x, w, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = giga_rate(4.0 * static_cast<double>(rows * cols), state);
  state.counters["GFLOP/s"] = giga_rate(2.0 * static_cast<double>(rows * cols), state);
}

// One row through kvrag::linear (the panel kernel, one row of x), the shape
// of every projection in a one-token decoder step: the bandwidth the
// engine's own kernel gets when it streams a weight matrix.
void BM_Gemv(benchmark::State& state) {
  time_gemv(
      state, [](const Tensor& w) { return kvrag::PanelMatrix(w.view()); },
      [](const Tensor& x, const kvrag::PanelMatrix& w, Tensor& y) {
        kvrag::linear(x.view(), w, y.view());
      });
}
BENCHMARK(BM_Gemv)->Args({65536, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();

// The same product through cblas_sgemv on the row-major matrix: what
// BM_Gemv's panels are measured against.
void BM_Sgemv(benchmark::State& state) {
  time_gemv(
      state, [](Tensor w) { return w; },
      [](const Tensor& x, const Tensor& w, Tensor& y) {
        const auto rows = static_cast<int>(w.rows());
        const auto cols = static_cast<int>(w.cols());
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w.data(), cols, x.data(), 1,
                    0.0f, y.data(), 1);
      });
}
BENCHMARK(BM_Sgemv)->Args({65536, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();

// One row through int8 weights with `kernels`: what a decoder step's
// projections cost with --weights int8. GB/s counts the int8 values and
// scales read (a quarter of BM_Gemv's bytes for the same shape).
void time_int8_gemv(benchmark::State& state, const kvrag::Int8Kernels& kernels) {
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const kvrag::Int8Matrix w = kvrag::quantize_int8(filled(rows, cols, 4).view());
  const Tensor x = filled(1, cols, 5);
  Tensor y(1, rows);
  for (auto _ : state) {
    kvrag::linear_int8_direct(x.view(), w, y.view(), false, kernels);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = giga_rate(static_cast<double>(w.bytes()), state);
  state.counters["GFLOP/s"] = giga_rate(2.0 * static_cast<double>(rows * cols), state);
}

void BM_Int8Gemv(benchmark::State& state) { time_int8_gemv(state, kvrag::int8_kernels()); }
BENCHMARK(BM_Int8Gemv)
    ->Args({65536, 1024})
    ->Args({6144, 768})
    ->Args({768, 3072})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Int8GemvPortable(benchmark::State& state) {
  time_int8_gemv(state, kvrag::portable_int8_kernels());
}
BENCHMARK(BM_Int8GemvPortable)->Args({65536, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();

// n rows through an (out, in) projection, by each way kvrag can compute it.
// GFLOP/s counts 2·n·out·in; GB/s the weight bytes read once.
// product(x, w, w_rows, y) has the weight both as a WeightMatrix and as the
// row-major (out, in) tensor it was made from.
template <typename Product>
void time_linear(benchmark::State& state, WeightDtype dtype, Product product) {
  const int64_t out = state.range(0);
  const int64_t in = state.range(1);
  const int64_t n = state.range(2);
  const Tensor w_rows = filled(out, in, 4);
  const kvrag::WeightMatrix w(w_rows, dtype);
  const Tensor x = filled(n, in, 5);
  Tensor y(n, out);
  for (auto _ : state) {
    product(x, w, w_rows, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = giga_rate(static_cast<double>(w.bytes()), state);
  state.counters["GFLOP/s"] = giga_rate(2.0 * static_cast<double>(n * out * in), state);
}

void BM_LinearF32(benchmark::State& state) {
  time_linear(state, WeightDtype::kF32,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear(x.view(), w, y.view());
              });
}

// The same product with the weights in binary16 and in bfloat16 panels.
void BM_LinearF16(benchmark::State& state) {
  time_linear(state, WeightDtype::kF16,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear(x.view(), w, y.view());
              });
}

void BM_LinearBf16(benchmark::State& state) {
  time_linear(state, WeightDtype::kBf16,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear(x.view(), w, y.view());
              });
}

// The same product through OpenBLAS's sgemm (sgemv for one row) over the
// row-major matrix: what BM_LinearF32's panels are measured against.
void BM_LinearF32Sgemm(benchmark::State& state) {
  time_linear(state, WeightDtype::kF32,
              [](const Tensor& x, const kvrag::WeightMatrix&, const Tensor& w_rows, Tensor& y) {
                kvrag::gemm(x.view(), false, w_rows.view(), true, y.view());
              });
}

// The product through the AVX2 kernels where the CPU also has AVX-512:
// what BM_LinearF32 gains from the wider ones.
void BM_LinearF32Avx2(benchmark::State& state) {
  if (kvrag::widest_vector_isa() < kvrag::VectorIsa::kAvx2) {
    state.SkipWithError("no AVX2 on this CPU");
    return;
  }
  time_linear(state, WeightDtype::kF32,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear_with(kvrag::VectorIsa::kAvx2, x.view(), w.f32(), y.view());
              });
}

void BM_LinearInt8Direct(benchmark::State& state) {
  time_linear(state, WeightDtype::kInt8,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear_int8_direct(x.view(), w.int8(), y.view(), false);
              });
}

void BM_LinearInt8Dequantized(benchmark::State& state) {
  time_linear(state, WeightDtype::kInt8,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear_int8_dequantized(x.view(), w.int8(), y.view(), false);
              });
}

void BM_LinearInt8Onednn(benchmark::State& state) {
  if (!kvrag::onednn_int8_supported()) {
    state.SkipWithError("no VNNI on this CPU: oneDNN's int8 path is off");
    return;
  }
  time_linear(state, WeightDtype::kInt8,
              [](const Tensor& x, const kvrag::WeightMatrix& w, const Tensor&, Tensor& y) {
                kvrag::linear_int8_onednn(x.view(), w.int8(), y.view(), false);
              });
}

// T5-base's gated wi (2·3072, 768) for 1 to 256 rows: beams, then prompts.
void linear_rows(benchmark::internal::Benchmark* b) {
  for (const int64_t n : {1, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 1024}) b->Args({6144, 768, n});
  for (const int64_t n : {16, 24, 32, 48, 64, 96}) b->Args({768, 3072, n});
  // And 1 to 8 rows through 64 MiB of int8 (256 MiB of f32), beyond every
  // cache: a (batched) decode step's case, bound by streaming the weights.
  for (const int64_t n : {1, 2, 4, 8}) b->Args({65536, 1024, n});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_LinearF32)->Apply(linear_rows);
BENCHMARK(BM_LinearF16)->Apply(linear_rows);
BENCHMARK(BM_LinearBf16)->Apply(linear_rows);
BENCHMARK(BM_LinearF32Sgemm)->Apply(linear_rows);
BENCHMARK(BM_LinearF32Avx2)->Apply(linear_rows);
BENCHMARK(BM_LinearInt8Direct)->Apply(linear_rows);
BENCHMARK(BM_LinearInt8Dequantized)->Apply(linear_rows);
BENCHMARK(BM_LinearInt8Onednn)->Apply(linear_rows);

// ---------------------------------------------------------------------------
// Model benchmarks

// Reads 256 MiB, more than any CPU cache holds: what a cached answer's
// decoder step does between two questions' encodings.
void evict_caches() {
  static const std::vector<uint64_t> words((size_t{256} << 20) / sizeof(uint64_t), 1);
  benchmark::DoNotOptimize(kvrag::bench::stream_read(words, 1));
}

// `batch` sequences of `seq_len` tokens; one sequence goes through encode(),
// several through encode_batch(). With `cold`, the caches are emptied
// (untimed) before each encoding, as in a cached answer.
void BM_Encoder(benchmark::State& state, Shape shape, int64_t batch, int64_t seq_len,
                WeightDtype weights, bool cold) {
  const T5Encoder encoder(random_model(shape, weights));
  const T5Config& c = encoder.model().config;
  std::vector<std::vector<int32_t>> inputs;
  for (int64_t s = 0; s < batch; ++s) inputs.push_back(token_ids(seq_len, c.vocab_size, 11 + s));
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      evict_caches();
      state.ResumeTiming();
    }
    if (batch == 1) {
      Tensor out = encoder.encode(inputs.front());
      benchmark::DoNotOptimize(out.data());
    } else {
      std::vector<Tensor> out = encoder.encode_batch(inputs);
      benchmark::DoNotOptimize(out.data());
    }
    benchmark::ClobberMemory();
  }
  const double tokens = static_cast<double>(batch * seq_len);
  const double flops =
      tokens * static_cast<double>(c.num_layers) * encoder_layer_flops_per_token(c, seq_len);
  state.counters["tokens/s"] = benchmark::Counter(tokens * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = giga_rate(flops, state);
}

// A decoder with a memory of `memory_tokens` positions (project_cross_kv of a
// random (memory_tokens, d_model) encoder output, kept in `memory_dtype`)
// and a self-attention cache of kDecoderPrefix positions. Kept per (shape,
// memory, weights, memory dtype) for the process: the T5-base projection
// alone is tens of GFLOPs.
struct DecoderFixture {
  std::shared_ptr<const T5Model> model;
  std::unique_ptr<T5Decoder> decoder;
  CrossMemory memory;
  DecoderCache prefix;
};

// Appends `kv` to `memory` as one block of `dtype` rows, as a cached chunk's
// memory is read from the store (pipeline/memory_builder.cpp).
void add_packed(CrossMemory& memory, const CrossKV& kv, KvDtype dtype) {
  auto packed = std::make_shared<kvrag::PackedMatrices>(
      kvrag::read_kv_blob(kvrag::encode_kv_blob(dtype, kvrag::blob_order(kv)), "benchmark memory"));
  memory.add(kvrag::blob_block(*packed), packed);
}

const DecoderFixture& decoder_fixture(Shape shape, int64_t memory_tokens, WeightDtype weights,
                                      KvDtype memory_dtype) {
  static std::map<std::tuple<Shape, int64_t, WeightDtype, KvDtype>, std::unique_ptr<DecoderFixture>>
      fixtures;
  std::unique_ptr<DecoderFixture>& f = fixtures[{shape, memory_tokens, weights, memory_dtype}];
  if (!f) {
    f = std::make_unique<DecoderFixture>();
    f->model = random_model(shape, weights);
    f->decoder = std::make_unique<T5Decoder>(f->model);
    const T5Config& c = f->model->config;
    const Tensor encoder_output = filled(memory_tokens, c.d_model, 6);
    CrossKV kv = kvrag::project_cross_kv(*f->model, encoder_output.view());
    if (memory_dtype == KvDtype::kF32) {
      f->memory = CrossMemory(std::move(kv));
    } else {
      add_packed(f->memory, kv, memory_dtype);
    }
    f->prefix = f->decoder->new_cache();
    const std::vector<int32_t> ids = token_ids(kDecoderPrefix, c.vocab_size, 13);
    const DecoderInput input{ids, &f->prefix};
    f->decoder->forward({&input, 1}, f->memory);
  }
  return *f;
}

// One query row's cross-attention over every layer of a <tokens>-token memory
// of T5-base width (12 layers, 12 heads of 64) kept in `dtype`, as one decoder
// step does it: GB/s of K/V read against BM_StreamRead's. The memory is one
// block, or blocks of `block_tokens` read from blobs of their own, as a
// cached answer's chunks are.
void BM_CrossAttention(benchmark::State& state, int64_t tokens, int64_t block_tokens, KvDtype dtype,
                       const kvrag::PackedKernels* kernels) {
  constexpr int64_t kLayers = 12;
  constexpr int64_t kHeads = 12;
  constexpr int64_t kWidth = 768;
  static std::map<std::tuple<int64_t, int64_t, KvDtype>, CrossMemory> memories;
  CrossMemory& memory = memories[{tokens, block_tokens, dtype}];
  for (int64_t first = 0; memory.tokens() < tokens; first += block_tokens) {
    const int64_t rows = std::min(block_tokens, tokens - first);
    CrossKV kv;
    for (int64_t l = 0; l < kLayers; ++l) {
      kv.k.push_back(filled(rows, kWidth, 100 + l + first));
      kv.v.push_back(filled(rows, kWidth, 200 + l + first));
    }
    if (dtype == KvDtype::kF32) {
      memory.add(std::make_shared<const CrossKV>(std::move(kv)));
    } else {
      add_packed(memory, kv, dtype);
    }
  }
  const Tensor q = filled(1, kWidth, 7);
  Tensor out(1, kWidth);
  for (auto _ : state) {
    for (int64_t l = 0; l < kLayers; ++l) {
      kvrag::cross_attention(q.view(), memory, l, kHeads, out.view(), nullptr, *kernels);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = giga_rate(static_cast<double>(memory.bytes()), state);
}

// One token through T5Decoder::forward, as in greedy decoding of one sequence.
// The cache is cut back to kDecoderPrefix rows after each step (resize_rows
// keeps the capacity, so this is O(1) and the next append does not allocate).
void BM_DecoderStep(benchmark::State& state, Shape shape, int64_t memory_tokens,
                    WeightDtype weights, KvDtype memory_dtype) {
  const DecoderFixture& f = decoder_fixture(shape, memory_tokens, weights, memory_dtype);
  const T5Config& c = f.model->config;
  DecoderCache cache = f.prefix;
  const std::vector<int32_t> next = {42};
  const DecoderInput input{next, &cache};
  for (auto _ : state) {
    kvrag::DecoderOutputs out = f.decoder->forward({&input, 1}, f.memory);
    benchmark::DoNotOptimize(out.logits.data());
    benchmark::ClobberMemory();
    for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
      cache.k[l].resize_rows(kDecoderPrefix);
      cache.v[l].resize_rows(kDecoderPrefix);
    }
  }
  // Bytes a step must read at least once: the decoder's weights and the
  // memory's K/V (the self-attention cache, 2·layers·16·inner floats, is noise).
  const auto bytes = static_cast<double>(f.decoder->step_weight_bytes() + f.memory.bytes());
  state.counters["GFLOP/s"] =
      giga_rate(decoder_step_flops(c, kDecoderPrefix + 1, memory_tokens), state);
  state.counters["GB/s"] = giga_rate(bytes, state);
  // Not a rate: the bytes one step streams, to set against BM_StreamRead's GB/s.
  state.counters["MB/step"] = bytes * 1e-6;
}

// One step of `batch` sequences decoded together, each over its own memory
// of 350 f16 tokens (a k = 5 answer's), as the server's batched decoding
// runs them (T5Decoder::forward_each): step time, and tokens/s across the
// batch, against batch 1.
void BM_DecoderBatchStep(benchmark::State& state, int64_t batch) {
  constexpr int64_t kMemoryTokens = 350;
  const DecoderFixture& f =
      decoder_fixture(Shape::kBase, kMemoryTokens, WeightDtype::kF32, KvDtype::kF16);
  const T5Config& c = f.model->config;
  std::vector<DecoderCache> caches(static_cast<size_t>(batch), f.prefix);
  // A copy of the memory each, as requests have their own: sharing one (as
  // this benchmark did), every sequence after the first read its 12.9 MB
  // from L3 rather than memory.
  const Tensor encoder_output = filled(kMemoryTokens, c.d_model, 6);
  const CrossKV kv = kvrag::project_cross_kv(*f.model, encoder_output.view());
  std::vector<CrossMemory> memories(static_cast<size_t>(batch));
  for (CrossMemory& memory : memories) add_packed(memory, kv, KvDtype::kF16);
  const std::vector<int32_t> next = {42};
  std::vector<kvrag::OwnMemoryInput> inputs;
  for (size_t i = 0; i < caches.size(); ++i) {
    inputs.push_back({{next, &caches[i]}, &memories[i]});
  }
  for (auto _ : state) {
    kvrag::DecoderOutputs out = f.decoder->forward_each(inputs);
    benchmark::DoNotOptimize(out.logits.data());
    benchmark::ClobberMemory();
    for (DecoderCache& cache : caches) {
      for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
        cache.k[l].resize_rows(kDecoderPrefix);
        cache.v[l].resize_rows(kDecoderPrefix);
      }
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

// A benchmark name's weights part: "" for f32, else "/f16" and so on.
std::string weights_part(WeightDtype weights) {
  return weights == WeightDtype::kF32 ? "" : "/" + std::string(kvrag::weight_dtype_name(weights));
}

void register_model_benchmarks() {
  for (Shape shape : {Shape::kSmall, Shape::kBase}) {
    const std::string name = shape_name(shape);
    // 16 tokens: a question, encoded at every cached answer.
    for (int64_t seq_len : {16, 64, 256}) {
      benchmark::RegisterBenchmark(("BM_Encoder/" + name + "/" + std::to_string(seq_len)).c_str(),
                                   BM_Encoder, shape, int64_t{1}, seq_len, WeightDtype::kF32, false)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
    benchmark::RegisterBenchmark(("BM_Encoder/" + name + "/16/cold").c_str(), BM_Encoder, shape,
                                 int64_t{1}, int64_t{16}, WeightDtype::kF32, true)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_Encoder/" + name + "/16x64").c_str(), BM_Encoder, shape,
                                 int64_t{16}, int64_t{64}, WeightDtype::kF32, false)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const WeightDtype weights : {WeightDtype::kF16, WeightDtype::kBf16, WeightDtype::kInt8}) {
      for (int64_t seq_len : {16, 256}) {
        benchmark::RegisterBenchmark(("BM_Encoder/" + name + "/" + std::to_string(seq_len) + "/" +
                                      kvrag::weight_dtype_name(weights))
                                         .c_str(),
                                     BM_Encoder, shape, int64_t{1}, seq_len, weights, false)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
      benchmark::RegisterBenchmark(
          ("BM_Encoder/" + name + "/16/cold" + weights_part(weights)).c_str(), BM_Encoder, shape,
          int64_t{1}, int64_t{16}, weights, true)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  // The fastest kernels under the plain name; each slower set this CPU runs
  // with its name appended, to hold them against.
  for (const kvrag::PackedKernels* kernels : kvrag::packed_kernel_sets()) {
    const bool fastest = kernels == &kvrag::packed_kernels();
    for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
      for (const int64_t block_tokens : {3000, 64}) {
        const std::string name = "BM_CrossAttention/3000/" +
                                 std::string(kvrag::kv_dtype_name(dtype)) +
                                 (block_tokens < 3000 ? "/chunks-64" : "") +
                                 (fastest ? "" : "/" + std::string(kernels->name));
        benchmark::RegisterBenchmark(name.c_str(), BM_CrossAttention, int64_t{3000}, block_tokens,
                                     dtype, kernels)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
  for (const int64_t batch : {1, 2, 4, 8}) {
    benchmark::RegisterBenchmark(("BM_DecoderBatchStep/t5-base/" + std::to_string(batch)).c_str(),
                                 BM_DecoderBatchStep, batch)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  // The two parts of a cached answer's time to first token with the bench's
  // model at k = 50 (about 3,000 memory tokens): the question's encoding
  // after the step before it emptied the caches, and one step.
  for (const WeightDtype weights :
       {WeightDtype::kF32, WeightDtype::kF16, WeightDtype::kBf16, WeightDtype::kInt8}) {
    const std::string dtype = weights_part(weights);
    benchmark::RegisterBenchmark(("BM_Encoder/t5-base-gated/16/cold" + dtype).c_str(), BM_Encoder,
                                 Shape::kBaseGated, int64_t{1}, int64_t{16}, weights, true)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_DecoderStep/t5-base-gated/3000/kv-f16" + dtype).c_str(),
                                 BM_DecoderStep, Shape::kBaseGated, int64_t{3000}, weights,
                                 KvDtype::kF16)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  for (Shape shape : {Shape::kSmall, Shape::kBase}) {
    const int64_t memory_tokens = 2000;
    for (const KvDtype memory_dtype : {KvDtype::kF32, KvDtype::kF16}) {
      for (const WeightDtype weights :
           {WeightDtype::kF32, WeightDtype::kF16, WeightDtype::kBf16, WeightDtype::kInt8}) {
        const std::string suffix =
            std::string(memory_dtype == KvDtype::kF16 ? "/kv-f16" : "") + weights_part(weights);
        benchmark::RegisterBenchmark(("BM_DecoderStep/" + std::string(shape_name(shape)) + "/" +
                                      std::to_string(memory_tokens) + suffix)
                                         .c_str(),
                                     BM_DecoderStep, shape, memory_tokens, weights, memory_dtype)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_model_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
