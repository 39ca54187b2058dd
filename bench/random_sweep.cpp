#include "bench/random_sweep.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "bench/random_model.h"
#include "core/error.h"
#include "data/corpus_reader.h"

namespace kvrag::bench {
namespace {

namespace fs = std::filesystem;

// A scratch folder for model folders and indexes, removed with its content.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("kvrag-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;  // a destructor must not throw
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Adds documents in small batches until the index holds `chunks` chunks, so
// that a large model encodes no more of the corpus than the sweep needs.
void index_until(RagPipeline& pipeline, const std::vector<Document>& docs, int64_t chunks,
                 const std::string& corpus_path) {
  constexpr size_t kBatch = 4;
  size_t next = 0;
  while (pipeline.stats().store.chunks < chunks) {
    KVRAG_CHECK(next < docs.size(), kInvalidArgument, "the corpus ", corpus_path, " gives only ",
                pipeline.stats().store.chunks, " chunks; the largest k needs ", chunks);
    const size_t end = std::min(docs.size(), next + kBatch);
    pipeline.add_documents(std::vector<Document>(docs.begin() + static_cast<std::ptrdiff_t>(next),
                                                 docs.begin() + static_cast<std::ptrdiff_t>(end)));
    next = end;
  }
}

}  // namespace

RandomSweepResult run_random_sweep(const RandomSweepSettings& sweep,
                                   const std::vector<EvalQuestion>& questions,
                                   const BenchSettings& settings, const BenchProgressFn& progress,
                                   const StatusFn& status) {
  KVRAG_CHECK(!sweep.shapes.empty(), kInvalidArgument, "no model shapes to sweep");
  KVRAG_CHECK(!sweep.weights.empty(), kInvalidArgument, "no weight dtypes to sweep");
  KVRAG_CHECK(!settings.ks.empty(), kInvalidArgument, "run_random_sweep: no k");
  for (const int64_t tokens : sweep.chunk_tokens) {
    KVRAG_CHECK(tokens >= 1, kInvalidArgument, "chunk length must be at least 1, got ", tokens);
  }
  for (const std::string& shape : sweep.shapes) random_shape_config(shape);  // fail early
  const std::vector<Document> docs = read_corpus({sweep.corpus_path}).documents;
  const int64_t max_k = *std::max_element(settings.ks.begin(), settings.ks.end());

  RandomSweepResult result;
  const ScratchDir scratch;
  for (const std::string& shape : sweep.shapes) {
    const std::string label = shape + " shape";
    const std::string model_dir = scratch.file(shape + "-model");
    if (status) status("writing a random-weight " + shape + " model to " + model_dir);
    write_random_model_folder(random_shape_config(shape), sweep.seed, sweep.spiece_path, model_dir);
    for (const int64_t tokens : sweep.chunk_tokens) {
      const std::string index_dir = scratch.file(shape + "-index-c" + std::to_string(tokens));
      IndexSettings index_settings;
      index_settings.chunking.max_tokens = static_cast<int>(tokens);
      index_settings.kv_dtype = sweep.kv_dtype;
      OpenOptions ram_options;
      ram_options.kv_cache_bytes = sweep.kv_cache_bytes;
      ram_options.weights = sweep.weights.front();
      if (status) {
        status("indexing " + std::to_string(max_k) + "+ chunks of " + std::to_string(tokens) +
               " tokens with the " + shape + " model");
      }
      {
        const auto ram = RagPipeline::create(index_dir, model_dir, index_settings, ram_options);
        index_until(*ram, docs, max_k, sweep.corpus_path);
        result.storage.push_back(storage_summary(*ram, label));
      }
      // One dtype's pair of pipelines, and so one model, at a time; the
      // chunks retrieved with the first dtype's.
      std::vector<std::vector<RetrievedChunk>> retrieved;
      for (const WeightDtype weights : sweep.weights) {
        ram_options.weights = weights;
        const BenchPipelines pipelines = open_bench_pipelines(index_dir, ram_options);
        if (weights == sweep.weights.front()) {
          retrieved = retrieve_questions(*pipelines.ram, questions, max_k, settings.retriever);
        }
        const BenchTarget target{weights_label(label, weights), true, pipelines.ram.get(),
                                 pipelines.sqlite.get(), &retrieved};
        BenchResult run = run_bench(target, questions, settings, progress);
        result.cells.insert(result.cells.end(), run.cells.begin(), run.cells.end());
        result.stream_bytes_per_s = std::max(result.stream_bytes_per_s, run.stream_bytes_per_s);
      }
    }
  }
  return result;
}

}  // namespace kvrag::bench
