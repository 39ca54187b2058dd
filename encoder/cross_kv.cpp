#include "encoder/cross_kv.h"

#include "core/error.h"
#include "core/ops.h"

namespace kvrag {

namespace {

// Checks that every layer's K and V of `part` hold its token count, so that
// the parts' row ranges in the joint memory neither overlap nor overrun.
void check_part_shape(const CrossKV& part) {
  KVRAG_CHECK(part.v.size() == part.k.size(), kInvalidArgument, "a memory has ", part.k.size(),
              " layers of K but ", part.v.size(), " of V");
  const int64_t tokens = part.tokens();
  for (size_t l = 0; l < part.k.size(); ++l) {
    KVRAG_CHECK(part.k[l].rows() == tokens && part.v[l].rows() == tokens, kInvalidArgument,
                "a memory of ", tokens, " tokens has ", part.k[l].rows(), " K and ",
                part.v[l].rows(), " V rows in layer ", l);
  }
  KVRAG_CHECK(part.valid.empty() || static_cast<int64_t>(part.valid.size()) == tokens,
              kInvalidArgument, "a memory of ", tokens, " tokens has a valid mask of ",
              part.valid.size());
}

// Width of layer `l` in the joint memory: that of the first part with
// tokens (0 when none has any); every other part with tokens must agree.
int64_t joint_width(std::span<const CrossKV* const> parts, size_t l,
                    std::vector<Tensor> CrossKV::*side) {
  int64_t width = 0;
  for (const CrossKV* part : parts) {
    if (part->tokens() == 0) continue;
    const int64_t cols = (part->*side)[l].cols();
    if (width == 0) width = cols;
    KVRAG_CHECK(cols == width, kInvalidArgument, "cannot join memories of width ", width, " and ",
                cols, " in layer ", l);
  }
  return width;
}

// Copies each part's layer `l` of `side` into its rows of one tensor. The
// data is reserved once and filled by appending: no zero-fill pass before
// the copy, and no reallocation.
Tensor join_layer(std::span<const CrossKV* const> parts, size_t l,
                  std::vector<Tensor> CrossKV::*side, int64_t total_tokens) {
  const int64_t width = joint_width(parts, l, side);
  std::vector<float> data;
  data.reserve(static_cast<size_t>(total_tokens * width));
  for (const CrossKV* part : parts) {
    if (part->tokens() == 0) continue;
    const Tensor& piece = (part->*side)[l];
    data.insert(data.end(), piece.data(), piece.data() + piece.size());
  }
  return Tensor(total_tokens, width, std::move(data));
}

}  // namespace

void CrossKV::append(const CrossKV& other) {
  const CrossKV* parts[] = {this, &other};
  *this = concat_cross_kv(parts);
}

CrossKV concat_cross_kv(std::span<const CrossKV* const> parts) {
  size_t layers = 0;
  int64_t total_tokens = 0;
  bool any_valid = false;
  for (const CrossKV* part : parts) {
    if (part->k.empty()) continue;
    check_part_shape(*part);
    if (layers == 0) layers = part->k.size();
    KVRAG_CHECK(part->k.size() == layers, kInvalidArgument, "cannot join memories of ", layers,
                " and ", part->k.size(), " layers");
    total_tokens += part->tokens();
    any_valid = any_valid || !part->valid.empty();
  }
  CrossKV joint;
  for (size_t l = 0; l < layers; ++l) {
    joint.k.push_back(join_layer(parts, l, &CrossKV::k, total_tokens));
    joint.v.push_back(join_layer(parts, l, &CrossKV::v, total_tokens));
  }
  if (any_valid) {
    joint.valid.reserve(static_cast<size_t>(total_tokens));
    for (const CrossKV* part : parts) {
      if (part->k.empty()) continue;
      if (part->valid.empty()) {
        joint.valid.insert(joint.valid.end(), static_cast<size_t>(part->tokens()), 1);
      } else {
        joint.valid.insert(joint.valid.end(), part->valid.begin(), part->valid.end());
      }
    }
  }
  return joint;
}

CrossKV project_cross_kv(const T5EncoderModel& model, ConstView encoder_output) {
  const T5Config& c = model.config;
  KVRAG_CHECK(encoder_output.cols == c.d_model, kInvalidArgument, "memory has width ",
              encoder_output.cols, ", the model's d_model is ", c.d_model);
  const int64_t inner = c.inner_dim();
  const int64_t tokens = encoder_output.rows;
  Tensor all(tokens, model.encoder_weights.cross_kv.rows());
  linear(encoder_output, model.encoder_weights.cross_kv.view(), all.view());
  CrossKV kv;
  for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
    Tensor k;
    Tensor v;
    k.append_rows(all.view().cols_slice(2 * l * inner, inner));
    v.append_rows(all.view().cols_slice((2 * l + 1) * inner, inner));
    kv.k.push_back(std::move(k));
    kv.v.push_back(std::move(v));
  }
  return kv;
}

}  // namespace kvrag
