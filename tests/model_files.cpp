#include "tests/model_files.h"

#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/half.h"
#include "tests/fixtures.h"

namespace kvrag::testing {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  static std::atomic<int> counter{0};
  path_ = fs::temp_directory_path() /
          (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;  // a destructor must not throw
  fs::remove_all(path_, ec);
}

std::string fixture_case(const std::string& name) {
  for (const std::string& dir : t5_fixture_cases()) {
    if (fs::path(dir).filename() == name) return dir;
  }
  return "";
}

std::vector<NamedTensor> read_tensors(const std::string& path) {
  const SafeTensorsFile file(path);
  std::vector<NamedTensor> tensors;
  for (const std::string& name : file.names()) {
    tensors.push_back({name, file.info(name).shape, file.read_f32(name)});
  }
  return tensors;
}

float round_to_dtype(float value, DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return half_to_float(float_to_half(value));
    case DType::kBF16:
      return bf16_to_float(float_to_bf16(value));
    default:
      return value;
  }
}

void write_sharded(const fs::path& dir, const std::vector<NamedTensor>& tensors, int shards,
                   DType dtype) {
  ASSERT_GE(shards, 1);
  nlohmann::json weight_map = nlohmann::json::object();
  const size_t per_shard = (tensors.size() + static_cast<size_t>(shards) - 1) / shards;
  for (int s = 0; s < shards; ++s) {
    char file[64];
    std::snprintf(file, sizeof(file), "model-%05d-of-%05d.safetensors", s + 1, shards);
    const size_t begin = std::min(tensors.size(), per_shard * static_cast<size_t>(s));
    const size_t end = std::min(tensors.size(), begin + per_shard);
    const std::vector<NamedTensor> part(tensors.begin() + static_cast<std::ptrdiff_t>(begin),
                                        tensors.begin() + static_cast<std::ptrdiff_t>(end));
    for (const NamedTensor& t : part) weight_map[t.name] = file;
    write_safetensors((dir / file).string(), part, dtype);
  }
  const nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  write_text((dir / "model.safetensors.index.json").string(), index.dump(2));
}

NamedTensor& find_tensor(std::vector<NamedTensor>& tensors, const std::string& name) {
  for (NamedTensor& t : tensors) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no tensor '" << name << "'";
  static NamedTensor missing;
  return missing;
}

void copy_model(const std::string& case_dir, const fs::path& dir,
                const std::function<void(std::vector<NamedTensor>&)>& edit) {
  fs::create_directories(dir);
  const fs::path src(case_dir);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(src / name, dir / name, fs::copy_options::overwrite_existing);
    // The fixtures are read-only; the copies are edited and deleted.
    fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write);
  }
  if (edit) {
    std::vector<NamedTensor> tensors = read_tensors((src / "model.safetensors").string());
    edit(tensors);
    write_safetensors((dir / "model.safetensors").string(), tensors);
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

void replace_in_file(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = read_text(path);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "'" << from << "' not in " << path;
  ASSERT_EQ(text.find(from, at + 1), std::string::npos) << "'" << from << "' twice in " << path;
  text.replace(at, from.size(), to);
  write_text(path, text);
}

void train_tiny_spiece(const std::string& path, int vocab_size) {
  const TempDir scratch("kvrag_test_spiece");
  // Enough distinct words for a unigram vocabulary of up to ~100 pieces.
  const char* const sentences[] = {
      kTinySpieceSentence,
      "a small model reads the passages and writes an answer",
      "retrieval finds the documents that answer the question",
      "every token of the encoder output becomes a key and a value",
      "the decoder attends to the keys and values of every passage",
      "questions about rivers mountains cities and history",
      "she sells sea shells by the sea shore",
      "numbers like one two three four five six seven eight nine ten",
  };
  std::string corpus;
  for (int i = 0; i < 20; ++i) {
    for (const char* sentence : sentences) corpus.append(sentence).append("\n");
  }
  write_text(scratch.file("corpus.txt"), corpus);
  const std::string args = "--input=" + scratch.file("corpus.txt") +
                           " --model_prefix=" + scratch.file("spiece") +
                           " --vocab_size=" + std::to_string(vocab_size) +
                           " --model_type=unigram --character_coverage=1.0"
                           " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
                           " --minloglevel=2";
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  ASSERT_TRUE(status.ok()) << "SentencePiece training failed: " << status.ToString();
  fs::copy_file(scratch.file("spiece.model"), path, fs::copy_options::overwrite_existing);
}

::testing::AssertionResult throws_error(const std::function<void()>& fn, ErrorKind kind,
                                        const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (e.kind() != kind) {
      return ::testing::AssertionFailure() << "threw " << error_kind_name(e.kind()) << ", expected "
                                           << error_kind_name(kind) << ": " << message;
    }
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks '" << part << "': " << message;
      }
    }
    return ::testing::AssertionSuccess() << message;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-kvrag exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "threw nothing, expected " << error_kind_name(kind);
}

}  // namespace kvrag::testing
