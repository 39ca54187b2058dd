// Helpers for tests that build model folders on disk: a temporary folder,
// sharded safetensors checkpoints, copies of a fixture folder with edits, a tiny
// trained SentencePiece model, and an error matcher for kvrag::Error.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "core/safetensors_writer.h"

namespace kvrag::testing {

// A fresh folder under the system temp dir, named `prefix` plus the process
// id and a counter (unique across tests and concurrent test processes);
// removed with its content on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // path() / name, as a string.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The safetensors writer lives in core (core/safetensors_writer.h); tests
// name it through this namespace too.
using kvrag::NamedTensor;
using kvrag::write_safetensors;

// The fixture case folder called `name` (e.g. "t5v1_relu_tied"), or an
// empty string when the fixtures are not there.
std::string fixture_case(const std::string& name);

// `value` rounded to `dtype` (kF16 or kBF16, to nearest even) and back, as
// write_safetensors stores it; kF32 returns it unchanged.
float round_to_dtype(float value, DType dtype);

// Every tensor of a safetensors file (F32, F16 or BF16), sorted by name.
std::vector<NamedTensor> read_tensors(const std::string& path);

// Writes `tensors` as `shards` files model-0000i-of-0000n.safetensors in
// `dir` plus model.safetensors.index.json, tensors dealt out in order.
void write_sharded(const std::filesystem::path& dir, const std::vector<NamedTensor>& tensors,
                   int shards, DType dtype = DType::kF32);

// The tensor called `name`; fails the test (and returns a dummy) if absent.
NamedTensor& find_tensor(std::vector<NamedTensor>& tensors, const std::string& name);

// Copies config.json and model.safetensors of the fixture `case_dir` into
// `dir` (created if needed). When `edit` is given, model.safetensors is
// rewritten (F32) with the tensors as `edit` leaves them.
void copy_model(const std::string& case_dir, const std::filesystem::path& dir,
                const std::function<void(std::vector<NamedTensor>&)>& edit = {});

// Replaces the one occurrence of `from` in the text file `path` by `to`;
// fails the test when `from` does not occur exactly once.
void replace_in_file(const std::string& path, const std::string& from, const std::string& to);

std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);

// Trains a unigram SentencePiece model of `vocab_size` pieces (pad 0, eos 1,
// unk 2, no bos: T5's layout) on a few English sentences and writes it to
// `path` (e.g. a model folder's spiece.model); vocab_size up to ~100 works.
// Scratch files go in a temporary folder. Fails the test if training fails.
void train_tiny_spiece(const std::string& path, int vocab_size = 64);

// A sentence made of words of the training text of train_tiny_spiece.
constexpr const char* kTinySpieceSentence = "the quick brown fox jumps over the lazy dog";

// Success when `fn` throws kvrag::Error of `kind` whose message contains
// every string of `parts`; the failure says what was thrown instead.
::testing::AssertionResult throws_error(const std::function<void()>& fn, ErrorKind kind,
                                        const std::vector<std::string>& parts);

}  // namespace kvrag::testing
