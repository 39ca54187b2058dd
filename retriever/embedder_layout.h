// The JSON files of a sentence-transformers model folder, as GTR-T5 and
// sentence-T5 ship them, read into what the embedder needs:
//
//   modules.json               the module sequence; kvrag reads
//                              Transformer (a T5 encoder), Pooling (mean),
//                              then optionally Dense and Normalize, in that order
//   sentence_bert_config.json  max_seq_length
//   <Pooling path>/config.json pooling_mode_mean_tokens true, every other mode false
//   <Dense path>/config.json   in_features, out_features, bias,
//                              activation_function torch.nn.modules.linear.Identity
//
// The weights (the encoder's folder, <Dense path>/model.safetensors) are
// read by SentenceEmbedder (retriever/sentence_embedder.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvrag {

struct EmbedderLayout {
  std::string dir;  // the folder as given
  std::string
      transformer_dir;      // the T5 encoder folder: dir, or dir/<path> when modules.json names one
  int64_t pooling_dim = 0;  // Pooling word_embedding_dimension, 0 when the config omits it
  std::string dense_dir;    // the Dense module's folder, empty when there is none
  int64_t dense_in = 0;     // Dense in_features
  int64_t dense_out = 0;    // Dense out_features: the embedding dimension
  bool dense_bias = false;  // whether linear.bias is stored
  int64_t max_seq_length = 0;           // encoder input tokens at most, eos included
  std::vector<std::string> json_files;  // every file read, in reading order (for the fingerprint)
};

// Reads and checks the layout of `dir`. Error(kNotFound) naming the file
// for a missing folder, modules.json, sentence_bert_config.json or module
// config; Error(kFormat) naming the file and the field for bad JSON, a
// module type or order kvrag does not read, a pooling mode other than the
// mean, a Dense activation other than Identity, or a size that is not a
// positive integer.
EmbedderLayout read_embedder_layout(const std::string& dir);

}  // namespace kvrag
