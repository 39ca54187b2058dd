#include "retriever/sentence_embedder.h"

#include <filesystem>

#include "core/error.h"
#include "core/hash.h"
#include "core/safetensors.h"
#include "retriever/embedder.h"
#include "retriever/embedder_layout.h"

namespace kvrag {
namespace fs = std::filesystem;

std::shared_ptr<const SentenceEmbedder> SentenceEmbedder::load(const std::string& dir) {
  const EmbedderLayout layout = read_embedder_layout(dir);
  auto encoder = load_t5_encoder_model(layout.transformer_dir);
  encoder->require_tokenizer();
  const int64_t d_model = encoder->config.d_model;
  const std::string encoder_config = (fs::path(layout.transformer_dir) / "config.json").string();
  KVRAG_CHECK(layout.pooling_dim == 0 || layout.pooling_dim == d_model, kFormat, dir,
              ": the Pooling module's word_embedding_dimension ", layout.pooling_dim,
              " differs from d_model ", d_model, " in ", encoder_config);

  std::shared_ptr<SentenceEmbedder> e(new SentenceEmbedder(std::move(encoder), dir));
  e->max_seq_length_ = layout.max_seq_length;
  e->dim_ = d_model;
  uint64_t h = 0;
  for (const std::string& file : layout.json_files) h = hash_file(file, h);
  h = hash_string(e->encoder_model().fingerprint, h);
  h = hash_file((fs::path(layout.transformer_dir) / "spiece.model").string(), h);
  if (!layout.dense_dir.empty()) {
    KVRAG_CHECK(layout.dense_in == d_model, kFormat, layout.dense_dir, "/config.json: in_features ",
                layout.dense_in, " differs from d_model ", d_model, " in ", encoder_config);
    const fs::path weights = fs::path(layout.dense_dir) / "model.safetensors";
    std::error_code ec;
    KVRAG_CHECK(fs::exists(weights, ec), kNotFound, weights.string(),
                ": no such file (the Dense weights, linear.weight and linear.bias; an older "
                "sentence-transformers pytorch_model.bin is not read: save it as safetensors)");
    // load() checks each shape and that every value is finite.
    const SafeTensorsCheckpoint dense(layout.dense_dir);
    e->dense_weight_ = dense.load("linear.weight", {layout.dense_out, layout.dense_in});
    if (layout.dense_bias) e->dense_bias_ = dense.load("linear.bias", {layout.dense_out});
    e->dim_ = layout.dense_out;
    for (const std::string& file : dense.files()) h = hash_file(file, h);
  }
  e->fingerprint_ = hex64(h);
  return e;
}

SentenceEmbedder::SentenceEmbedder(std::shared_ptr<const T5EncoderModel> encoder,
                                   const std::string& dir)
    : dir_(dir), encoder_(std::move(encoder)) {}

std::vector<int32_t> SentenceEmbedder::input_ids(const std::string& text) const {
  const T5EncoderModel& model = encoder_model();
  std::vector<int32_t> ids = model.require_tokenizer().encode(text);
  // transformers' truncation keeps room for the eos it appends.
  if (static_cast<int64_t>(ids.size()) >= max_seq_length_) {
    ids.resize(static_cast<size_t>(max_seq_length_ - 1));
  }
  ids.push_back(model.config.eos_token_id);
  return ids;
}

std::vector<float> SentenceEmbedder::embed(const std::vector<int32_t>& ids,
                                           const std::function<void()>& between_layers) const {
  return head(encoder_.encode(ids, between_layers).view());
}

std::vector<std::vector<float>> SentenceEmbedder::embed_batch(
    const std::vector<std::vector<int32_t>>& batch) const {
  std::vector<std::vector<float>> out;
  out.reserve(batch.size());
  for (const Tensor& hidden : encoder_.encode_batch(batch)) out.push_back(head(hidden.view()));
  return out;
}

std::vector<float> SentenceEmbedder::head(ConstView encoder_output) const {
  std::vector<double> pooled = column_sums(encoder_output);
  // Unlike embed()'s, this mean's 1/rows does not cancel: Dense adds a bias.
  for (double& v : pooled) v /= static_cast<double>(encoder_output.rows);
  if (dense_weight_.rows() == 0) return l2_normalized(pooled);
  std::vector<double> projected(static_cast<size_t>(dim_), 0.0);
  for (int64_t i = 0; i < dim_; ++i) {
    const float* w = dense_weight_.row(i);
    double sum = dense_bias_.rows() > 0 ? dense_bias_.at(0, i) : 0.0;
    for (size_t j = 0; j < pooled.size(); ++j) sum += w[j] * pooled[j];
    projected[static_cast<size_t>(i)] = sum;
  }
  return l2_normalized(projected);
}

}  // namespace kvrag
