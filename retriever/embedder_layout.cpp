#include "retriever/embedder_layout.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_input.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kModulePrefix = "sentence_transformers.models.";
constexpr const char* kSupported =
    "kvrag reads Transformer (a T5 encoder), Pooling (mean), then optionally Dense and "
    "Normalize, in that order";
constexpr const char* kIdentity = "torch.nn.modules.linear.Identity";
// Far above any real retriever (GTR-T5-XXL: d_model 4096, 512 tokens).
constexpr int64_t kMaxSize = 1 << 20;

// The JSON object in `path`, which `layout` records for the fingerprint.
json read_json_file(const std::string& path, EmbedderLayout& layout) {
  std::ifstream in(path);
  KVRAG_CHECK(in.good(), kNotFound, path,
              ": no such file (an embedder folder is a sentence-transformers model: "
              "modules.json, sentence_bert_config.json, the T5 encoder, 1_Pooling, 2_Dense)");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = parse_json_bounded(text.str());
  } catch (const Error& e) {
    KVRAG_THROW(kFormat, path, ": ", e.what());
  }
  layout.json_files.push_back(path);
  return j;
}

int64_t read_size(const json& j, const char* key, const std::string& path) {
  KVRAG_CHECK(j.contains(key), kFormat, path, ": no '", key, "'");
  KVRAG_CHECK(
      j[key].is_number_integer() && j[key].get<int64_t>() > 0 && j[key].get<int64_t>() <= kMaxSize,
      kFormat, path, ": '", key, "' must be an integer in 1..", kMaxSize, ", got ", j[key].dump());
  return j[key].get<int64_t>();
}

bool read_bool(const json& j, const char* key, bool fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  KVRAG_CHECK(j[key].is_boolean(), kFormat, path, ": '", key, "' must be true or false, got ",
              j[key].dump());
  return j[key].get<bool>();
}

struct Module {
  std::string type;  // without kModulePrefix
  std::string path;  // relative to the folder
};

std::vector<Module> read_modules(const std::string& dir, EmbedderLayout& layout) {
  const std::string path = (fs::path(dir) / "modules.json").string();
  const json j = read_json_file(path, layout);
  KVRAG_CHECK(j.is_array() && !j.empty(), kFormat, path, ": expected a non-empty array of modules");
  std::vector<Module> modules;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& m = j[i];
    KVRAG_CHECK(m.is_object() && m.contains("type") && m["type"].is_string() &&
                    m.contains("path") && m["path"].is_string(),
                kFormat, path, ": module ", i, " needs a \"type\" and a \"path\" string");
    std::string type = m["type"].get<std::string>();
    const std::string prefix = kModulePrefix;
    KVRAG_CHECK(type.rfind(prefix, 0) == 0, kFormat, path, ": module ", i, " is '", type,
                "', not a sentence_transformers module; ", kSupported);
    const std::string module_path = m["path"].get<std::string>();
    KVRAG_CHECK(module_path.find("..") == std::string::npos && !fs::path(module_path).is_absolute(),
                kFormat, path, ": module ", i, " has the path '", module_path,
                "', which leaves the folder");
    modules.push_back({type.substr(prefix.size()), module_path});
  }
  // Transformer, Pooling, [Dense], [Normalize]: the position each may take.
  const std::vector<std::string> order = {"Transformer", "Pooling", "Dense", "Normalize"};
  size_t next = 0;
  for (size_t i = 0; i < modules.size(); ++i) {
    size_t at = next;
    while (at < order.size() && order[at] != modules[i].type) ++at;
    const bool required_skipped = next < 2 && at != next;
    KVRAG_CHECK(at < order.size() && !required_skipped, kFormat, path, ": module ", i, " is '",
                kModulePrefix, modules[i].type, "'; ", kSupported);
    next = at + 1;
  }
  KVRAG_CHECK(next >= 2, kFormat, path, ": no Pooling module; ", kSupported);
  return modules;
}

void read_pooling(const std::string& dir, EmbedderLayout& layout) {
  const std::string path = (fs::path(dir) / "config.json").string();
  const json j = read_json_file(path, layout);
  KVRAG_CHECK(j.is_object(), kFormat, path, ": expected a JSON object");
  KVRAG_CHECK(read_bool(j, "pooling_mode_mean_tokens", false, path), kFormat, path,
              ": pooling_mode_mean_tokens is not true; kvrag pools by the mean of the tokens");
  for (const auto& [key, value] : j.items()) {
    if (key.rfind("pooling_mode_", 0) != 0 || key == "pooling_mode_mean_tokens") continue;
    KVRAG_CHECK(!read_bool(j, key.c_str(), false, path), kFormat, path, ": ", key,
                " is true; kvrag pools by the mean of the tokens only");
  }
  if (j.contains("word_embedding_dimension")) {
    layout.pooling_dim = read_size(j, "word_embedding_dimension", path);
  }
}

void read_dense(const std::string& dir, EmbedderLayout& layout) {
  const std::string path = (fs::path(dir) / "config.json").string();
  const json j = read_json_file(path, layout);
  KVRAG_CHECK(j.is_object(), kFormat, path, ": expected a JSON object");
  layout.dense_dir = dir;
  layout.dense_in = read_size(j, "in_features", path);
  layout.dense_out = read_size(j, "out_features", path);
  layout.dense_bias = read_bool(j, "bias", true, path);
  if (j.contains("activation_function")) {
    const json& a = j["activation_function"];
    KVRAG_CHECK(a.is_string() && a.get<std::string>() == kIdentity, kFormat, path,
                ": activation_function ", a.dump(), " is not supported (kvrag reads '", kIdentity,
                "', as GTR-T5 and sentence-T5 use)");
  }
}

}  // namespace

EmbedderLayout read_embedder_layout(const std::string& dir) {
  std::error_code ec;
  KVRAG_CHECK(fs::is_directory(dir, ec), kNotFound, dir, ": no such embedder folder");
  EmbedderLayout layout;
  layout.dir = dir;
  for (const Module& m : read_modules(dir, layout)) {
    const std::string module_dir = (fs::path(dir) / m.path).string();
    if (m.type == "Transformer") {
      layout.transformer_dir = m.path.empty() ? dir : module_dir;
    } else if (m.type == "Pooling") {
      read_pooling(module_dir, layout);
    } else if (m.type == "Dense") {
      read_dense(module_dir, layout);
    }
    // Normalize has no files: kvrag L2-normalises every embedding anyway.
  }
  const std::string config = (fs::path(dir) / "sentence_bert_config.json").string();
  const json j = read_json_file(config, layout);
  KVRAG_CHECK(j.is_object(), kFormat, config, ": expected a JSON object");
  layout.max_seq_length = read_size(j, "max_seq_length", config);
  KVRAG_CHECK(!read_bool(j, "do_lower_case", false, config), kFormat, config,
              ": do_lower_case true is not supported");
  return layout;
}

}  // namespace kvrag
