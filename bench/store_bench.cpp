// The store backends side by side on synthetic data (issue 18): how fast
// documents are written the way indexing writes them, and how long a
// lexical search takes, on the SQLite folder and on PostgreSQL in one run.
//
// usage: kvrag_store_bench [--postgres URI] [--documents N] [--queries Q]
//   URI defaults to KVRAG_TEST_POSTGRES (scripts/cluster.sh's cluster); the
//   index goes to a fresh schema that is dropped at the end.
// Each document: 4 chunks of 60 words, embeddings of 128 floats, blobs of
// 10 KB, all in one write transaction that advances the generation (as
// pipeline/index_folder.cpp's write_batch does); half the documents are
// written one per transaction, half 25 per transaction. Then Q lexical
// searches of 6 words at k = 20 after 10 of warm-up. Prints Markdown.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_stats.h"
#include "core/error.h"
#include "data/index_stores.h"
#include "data/postgres_store.h"

namespace kvrag {
namespace {

constexpr int kChunksPerDocument = 4;
constexpr int kWordsPerChunk = 60;
constexpr int kEmbeddingDim = 128;
constexpr size_t kBlobBytes = 10 * 1024;
constexpr int kBatch = 25;
constexpr int kQueryWords = 6;
constexpr int kWarmup = 10;
constexpr int64_t kTopK = 20;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Pronounceable made-up words drawn with Zipf frequencies, so that the
// lexical index sees common and rare words as in real text.
class WordSource {
 public:
  explicit WordSource(int vocabulary) : random_(42) {
    const std::string consonants = "bdfgklmnprstvz";
    const std::string vowels = "aeiou";
    double total = 0.0;
    for (int i = 0; i < vocabulary; ++i) {
      std::string word;
      for (int s = 0, n = 2 + i % 3; s < n; ++s) {
        word += consonants[random_() % consonants.size()];
        word += vowels[random_() % vowels.size()];
      }
      words_.push_back(word);
      total += 1.0 / (i + 1);
      cumulative_.push_back(total);
    }
  }

  std::string words(int n) {
    std::string out;
    std::uniform_real_distribution<double> uniform(0.0, cumulative_.back());
    for (int i = 0; i < n; ++i) {
      const auto at = std::lower_bound(cumulative_.begin(), cumulative_.end(), uniform(random_));
      out += (i ? " " : "") + words_[static_cast<size_t>(at - cumulative_.begin())];
    }
    return out;
  }

  std::mt19937& random() { return random_; }

 private:
  std::mt19937 random_;
  std::vector<std::string> words_;
  std::vector<double> cumulative_;
};

struct Figures {
  double documents_per_s_single = 0.0;   // one document per transaction
  double documents_per_s_batched = 0.0;  // kBatch documents per transaction
  double search_p50_ms = 0.0;
  double search_p95_ms = 0.0;
  int64_t chunks = 0;
};

void write_document(IndexStores& stores, WordSource& source, int n) {
  Document doc;
  doc.external_id = "doc-" + std::to_string(n);
  doc.title = "Document " + std::to_string(n);
  doc.source = "bench";
  std::vector<NewChunk> chunks(kChunksPerDocument);
  for (int c = 0; c < kChunksPerDocument; ++c) {
    chunks[c].position = c;
    chunks[c].text = source.words(kWordsPerChunk);
    chunks[c].token_ids.assign(kWordsPerChunk, n + c);
    chunks[c].content_hash = doc.external_id + "/" + std::to_string(c);
    chunks[c].embedding.assign(kEmbeddingDim, 1.0f / std::sqrt(float{kEmbeddingDim}));
    doc.text += chunks[c].text + "\n";
  }
  MemoryBlob blob;
  blob.tokens = kWordsPerChunk;
  blob.bytes.resize(kBlobBytes);
  for (uint8_t& byte : blob.bytes) byte = static_cast<uint8_t>(source.random()());
  const int64_t id = stores.metadata->add_document(doc, "hash-" + doc.external_id);
  for (const NewChunk& chunk : chunks)
    stores.blobs->put(stores.metadata->add_chunk(id, chunk), blob);
}

Figures measure(IndexStores& stores, int documents, int queries) {
  WordSource source(5000);
  Figures f;
  const int single = documents / 2;
  auto start = Clock::now();
  for (int n = 0; n < single; ++n) {
    stores.metadata->write_transaction([&] {
      write_document(stores, source, n);
      stores.metadata->advance_generation();
    });
  }
  f.documents_per_s_single = single / seconds_since(start);
  start = Clock::now();
  for (int n = single; n < documents; n += kBatch) {
    stores.metadata->write_transaction([&] {
      for (int d = n; d < std::min(documents, n + kBatch); ++d) write_document(stores, source, d);
      stores.metadata->advance_generation();
    });
  }
  f.documents_per_s_batched = (documents - single) / seconds_since(start);
  f.chunks = stores.metadata->stats().chunks;

  std::vector<double> ms;
  for (int q = 0; q < kWarmup + queries; ++q) {
    const std::string query = source.words(kQueryWords);
    const auto t = Clock::now();
    stores.metadata->search_lexical(query, kTopK);
    if (q >= kWarmup) ms.push_back(1e3 * seconds_since(t));
  }
  f.search_p50_ms = bench::median(ms);
  f.search_p95_ms = bench::p95(ms);
  return f;
}

void print_row(const std::string& backend, const Figures& f) {
  std::printf("| %s | %lld | %.0f | %.0f | %.0f | %.2f | %.2f |\n", backend.c_str(),
              static_cast<long long>(f.chunks), f.documents_per_s_single, f.documents_per_s_batched,
              f.documents_per_s_batched * kChunksPerDocument, f.search_p50_ms, f.search_p95_ms);
}

int run(int argc, char** argv) {
  std::string uri = std::getenv("KVRAG_TEST_POSTGRES") ? std::getenv("KVRAG_TEST_POSTGRES") : "";
  int documents = 500;
  int queries = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--postgres") {
      uri = argv[i + 1];
    } else if (flag == "--documents") {
      documents = std::stoi(argv[i + 1]);
    } else if (flag == "--queries") {
      queries = std::stoi(argv[i + 1]);
    } else {
      KVRAG_THROW(kInvalidArgument, "unknown flag ", flag);
    }
  }
  std::printf(
      "%d documents × %d chunks (embeddings %d floats, blobs %zu B); %d searches of %d "
      "words, k = %lld\n\n",
      documents, kChunksPerDocument, kEmbeddingDim, kBlobBytes, queries, kQueryWords,
      static_cast<long long>(kTopK));
  std::printf(
      "| backend | chunks | docs/s (1 per txn) | docs/s (%d per txn) | chunks/s (%d per "
      "txn) | lexical p50 ms | lexical p95 ms |\n|---|---|---|---|---|---|---|\n",
      kBatch, kBatch);

  const auto folder =
      std::filesystem::temp_directory_path() / ("kvrag_store_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  {
    IndexStores sqlite = open_index_stores((folder / "store.sqlite").string());
    print_row("SQLite folder", measure(sqlite, documents, queries));
  }
  std::filesystem::remove_all(folder);

  if (uri.empty()) {
    std::printf("\n(no PostgreSQL: pass --postgres URI or set KVRAG_TEST_POSTGRES)\n");
    return 0;
  }
  const std::string index = uri + (uri.find('?') == std::string::npos ? "?" : "&") +
                            "schema=kvrag_store_bench_" + std::to_string(::getpid());
  {
    IndexStores postgres = open_index_stores(index);
    print_row("PostgreSQL", measure(postgres, documents, queries));
  }
  drop_postgres_schema(index);
  return 0;
}

}  // namespace
}  // namespace kvrag

int main(int argc, char** argv) {
  try {
    return kvrag::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "kvrag_store_bench: " << e.what() << "\n";
    return 1;
  }
}
