#include "decoder/cross_memory.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>

#include "core/error.h"
#include "core/ops.h"
#include "core/parallel.h"

namespace kvrag {
namespace {

// Checks that every layer's K and V of `block` hold its token count, so that
// the blocks' positions in the memory neither overlap nor overrun.
void check_block_shape(const MemoryBlock& block) {
  KVRAG_CHECK(block.v.size() == block.k.size() && !block.k.empty(), kInvalidArgument,
              "a memory block has ", block.k.size(), " layers of K and ", block.v.size(), " of V");
  const int64_t tokens = block.tokens();
  const int64_t width = block.k[0].cols;
  for (size_t l = 0; l < block.k.size(); ++l) {
    KVRAG_CHECK(block.k[l].rows == tokens && block.v[l].rows == tokens &&
                    block.k[l].cols == width && block.v[l].cols == width,
                kInvalidArgument, "a memory block of [", tokens, ", ", width, "] has K [",
                block.k[l].rows, ", ", block.k[l].cols, "] and V [", block.v[l].rows, ", ",
                block.v[l].cols, "] in layer ", l);
  }
  KVRAG_CHECK(block.valid.empty() || static_cast<int64_t>(block.valid.size()) == tokens,
              kInvalidArgument, "a memory block of ", tokens, " tokens has a valid mask of ",
              block.valid.size());
}

// Memory positions one thread takes at the least in the passes below.
constexpr int64_t kPositionGrain = 256;

// Calls visit(k, v, valid, t, rows, at) for the memory positions in [begin,
// end), a run of rows at a time: rows t .. t + rows of block's layer `layer`
// K and V (valid: the block's mask, empty if all attended), at = the memory
// position of row t.
template <typename Visit>
void for_runs(const CrossMemory& memory, int64_t layer, int64_t begin, int64_t end, Visit visit) {
  int64_t first = 0;  // the memory position of the block's row 0
  for (const MemoryBlock& block : memory.blocks()) {
    const int64_t rows = block.tokens();
    const int64_t t = std::max<int64_t>(begin - first, 0);
    const int64_t stop = std::min(rows, end - first);
    if (t < stop) visit(block.k[layer], block.v[layer], block.valid, t, stop - t, first + t);
    first += rows;
    if (first >= end) return;
  }
}

// Pass 1 over the keys: scores[(i·heads + h)·tk + j] = q_i,h · k_j,h for
// every memory position j (−inf where masked), each key row read once for
// all queries and heads; the positions split over compute_threads().
void key_scores(ConstView q, const CrossMemory& memory, int64_t layer, int64_t heads,
                const PackedKernels& kernels, std::vector<float>& scores) {
  constexpr float kMasked = -std::numeric_limits<float>::infinity();
  const int64_t tk = memory.tokens();
  const int64_t d_kv = q.cols / heads;
  const std::span<const float> bias = memory.bias();
  parallel_for(tk, kPositionGrain, [&](int64_t begin, int64_t end) {
    std::vector<float> run_scores;  // (rows, heads)
    for_runs(memory, layer, begin, end,
             [&](const PackedRows& k, const PackedRows&, std::span<const uint8_t> valid, int64_t t,
                 int64_t rows, int64_t at) {
               run_scores.resize(static_cast<size_t>(rows * heads));
               for (int64_t i = 0; i < q.rows; ++i) {
                 kernels.segment_dots(k.dtype, k.row(t), k.stride, rows, k.cols, q.row(i), d_kv,
                                      run_scores.data());
                 for (int64_t r = 0; r < rows; ++r) {
                   const bool attended = valid.empty() || valid[t + r] != 0;
                   const float shift = bias.empty() ? 0.0f : bias[at + r];
                   for (int64_t h = 0; h < heads; ++h) {
                     scores[static_cast<size_t>((i * heads + h) * tk + at + r)] =
                         attended ? run_scores[r * heads + h] + shift : kMasked;
                   }
                 }
               }
             });
  });
}

// Pass 2 over the values: out_i += Σ_j p_i,h,j · v_j,h, each value row read
// once for all queries and heads. Each thread sums its positions into its
// own rows, added to `out` in position order (the same sum on every run).
void weighted_values(const std::vector<float>& probs, const CrossMemory& memory, int64_t layer,
                     int64_t heads, const PackedKernels& kernels, View out) {
  const int64_t tk = memory.tokens();
  const int64_t d_kv = out.cols / heads;
  for (int64_t i = 0; i < out.rows; ++i) std::fill(out.row(i), out.row(i) + out.cols, 0.0f);
  std::mutex parts_mutex;
  std::map<int64_t, Tensor> parts;  // by first position
  parallel_for(tk, kPositionGrain, [&](int64_t begin, int64_t end) {
    Tensor sum(out.rows, out.cols);
    std::vector<float> weights;  // (rows, heads)
    for_runs(memory, layer, begin, end,
             [&](const PackedRows&, const PackedRows& v, std::span<const uint8_t>, int64_t t,
                 int64_t rows, int64_t at) {
               weights.resize(static_cast<size_t>(rows * heads));
               for (int64_t i = 0; i < out.rows; ++i) {
                 for (int64_t r = 0; r < rows; ++r) {
                   for (int64_t h = 0; h < heads; ++h) {
                     weights[r * heads + h] =
                         probs[static_cast<size_t>((i * heads + h) * tk + at + r)];
                   }
                 }
                 kernels.segment_axpy(v.dtype, v.row(t), v.stride, rows, v.cols, weights.data(),
                                      d_kv, sum.row(i));
               }
             });
    const std::lock_guard<std::mutex> lock(parts_mutex);
    parts.emplace(begin, std::move(sum));
  });
  for (const auto& [begin, sum] : parts) add_inplace(out, sum.view());
}

}  // namespace

MemoryBlock blob_block(const PackedMatrices& kv) {
  MemoryBlock block;
  for (size_t i = 0; i + 1 < kv.matrices.size(); i += 2) {
    block.k.push_back(kv.matrices[i]);
    block.v.push_back(kv.matrices[i + 1]);
  }
  return block;
}

CrossMemory::CrossMemory(CrossKV kv) { add(std::make_shared<const CrossKV>(std::move(kv))); }

void CrossMemory::add(MemoryBlock block, std::shared_ptr<const void> owner) {
  check_block_shape(block);
  KVRAG_CHECK(bias_.empty(), kInvalidArgument,
              "a block was added to a memory whose bias is set (set it last)");
  if (!blocks_.empty()) {
    KVRAG_CHECK(static_cast<int64_t>(block.k.size()) == layers(), kInvalidArgument,
                "cannot join memories of ", layers(), " and ", block.k.size(), " layers");
    KVRAG_CHECK(block.k[0].cols == width(), kInvalidArgument, "cannot join memories of width ",
                width(), " and ", block.k[0].cols);
  }
  tokens_ += block.tokens();
  blocks_.push_back(std::move(block));
  owners_.push_back(std::move(owner));
}

void CrossMemory::add(std::shared_ptr<const CrossKV> kv) {
  MemoryBlock block;
  for (const Tensor& k : kv->k) block.k.push_back(packed_view(k.view()));
  for (const Tensor& v : kv->v) block.v.push_back(packed_view(v.view()));
  block.valid = kv->valid;
  add(std::move(block), std::move(kv));
}

void CrossMemory::set_bias(std::vector<float> bias) {
  KVRAG_CHECK(bias.empty() || static_cast<int64_t>(bias.size()) == tokens_, kInvalidArgument,
              "a memory of ", tokens_, " tokens was given a bias of ", bias.size());
  for (size_t i = 0; i < bias.size(); ++i) {
    KVRAG_CHECK(std::isfinite(bias[i]), kInvalidArgument, "the memory bias at position ", i,
                " is not finite (", bias[i], ")");
  }
  bias_ = std::move(bias);
}

int64_t CrossMemory::bytes() const {
  int64_t total = 0;
  for (const MemoryBlock& block : blocks_) {
    for (size_t l = 0; l < block.k.size(); ++l) total += block.k[l].bytes() + block.v[l].bytes();
  }
  return total;
}

// Two passes, scores then values, rather than one with a running (online)
// softmax: every position's probability is needed anyway for `mass` (the
// answer's attention over its sources), and two passes read each K and V
// row exactly once, as one would.
void cross_attention(ConstView q, const CrossMemory& memory, int64_t layer, int64_t num_heads,
                     View out, View* mass, const PackedKernels& kernels) {
  const int64_t tq = q.rows;
  const int64_t tk = memory.tokens();
  const int64_t inner = q.cols;
  KVRAG_CHECK(num_heads > 0 && inner % num_heads == 0 && memory.width() == inner &&
                  out.rows == tq && out.cols == inner && layer >= 0 && layer < memory.layers(),
              kInternal, "cross attention: q [", tq, ", ", inner, "] over a memory of width ",
              memory.width(), " and ", memory.layers(), " layers (layer ", layer, "), out [",
              out.rows, ", ", out.cols, "], ", num_heads, " heads");
  KVRAG_CHECK(!mass || (mass->rows == tq && mass->cols == tk), kInternal,
              "cross attention: mass shape");
  // Every slot is written by key_scores. Kept per thread, up to 4 MiB, so
  // that a decoder step's layers do not each allocate and zero it; larger
  // (many queries over a long memory) is allocated per call, so that no
  // thread keeps it.
  constexpr size_t kKeptScores = size_t{1} << 20;
  const auto n_scores = static_cast<size_t>(tq * num_heads * tk);
  thread_local std::vector<float> kept;
  std::vector<float> once;
  std::vector<float>& scores = n_scores <= kKeptScores ? kept : once;
  scores.resize(n_scores);
  key_scores(q, memory, layer, num_heads, kernels, scores);
  const View probs{scores.data(), tq * num_heads, tk, tk};
  parallel_for(probs.rows, 1, [&](int64_t begin, int64_t end) {
    softmax_rows(View{probs.row(begin), end - begin, tk, tk});
  });
  if (mass) {
    const float share = 1.0f / static_cast<float>(num_heads);
    for (int64_t i = 0; i < tq; ++i) {
      for (int64_t h = 0; h < num_heads; ++h) {
        const float* p = probs.row(i * num_heads + h);
        for (int64_t j = 0; j < tk; ++j) mass->row(i)[j] += share * p[j];
      }
    }
  }
  weighted_values(scores, memory, layer, num_heads, kernels, out);
}

}  // namespace kvrag
