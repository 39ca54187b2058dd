#include "retriever/faiss_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <shared_mutex>
#include <typeinfo>
#include <unordered_set>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/format.h"

namespace kvrag {
namespace {

using FaissId = faiss::Index::idx_t;
static_assert(sizeof(FaissId) == sizeof(int64_t));

// FAISS asks for this many training vectors per k-means centroid and warns
// below it; training earlier gives centroids fitted to a handful of points.
constexpr int64_t kTrainingVectorsPerCentroid = 39;

// Runs a FAISS call and turns whatever it throws (FaissException, bad_alloc)
// into kvrag::Error of `kind`, prefixed with `what`.
template <typename Fn>
auto faiss_call(ErrorKind kind, const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_error(kind, str_cat(what, ": ", e.what()));
  }
}

// index_ is always an IndexIDMap2: make_index() builds one, load() checks.
faiss::IndexIDMap2& id_map(faiss::Index& index) { return static_cast<faiss::IndexIDMap2&>(index); }

// How an IVF index stores the vectors of its lists, for describe().
std::string describe_ivf_codes(const faiss::IndexIVF* ivf) {
  if (const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf)) {
    return str_cat("PQ", ivfpq->pq.M, "x", ivfpq->pq.nbits);
  }
  if (dynamic_cast<const faiss::IndexIVFFlat*>(ivf)) return "Flat";
  if (dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(ivf)) return "SQ";
  return typeid(*ivf).name();
}

// A short name of an index's structure ("IVF16,Flat", "HNSW", "Flat"): what
// load() compares to tell whether a file was built by the same factory.
std::string describe(const faiss::Index* index) {
  if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    return str_cat("PreTransform(", pre->chain.size(), "),", describe(pre->index));
  }
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
    return str_cat("IVF", ivf->nlist, ",", describe_ivf_codes(ivf));
  }
  if (dynamic_cast<const faiss::IndexHNSW*>(index)) return "HNSW";
  if (dynamic_cast<const faiss::IndexFlat*>(index)) return "Flat";
  if (const auto* pq = dynamic_cast<const faiss::IndexPQ*>(index)) {
    return str_cat("PQ", pq->pq.M, "x", pq->pq.nbits);
  }
  if (dynamic_cast<const faiss::IndexScalarQuantizer*>(index)) return "SQ";
  return typeid(*index).name();
}

// Training vectors an untrained index needs: kTrainingVectorsPerCentroid
// times the largest k-means it runs (IVF coarse quantizer, PQ codebooks).
int64_t training_vectors_needed(const faiss::Index* index) {
  if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    return training_vectors_needed(pre->index);
  }
  int64_t centroids = 1;
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
    centroids = std::max<int64_t>(centroids, static_cast<int64_t>(ivf->nlist));
  }
  if (const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(index)) {
    centroids = std::max<int64_t>(centroids, static_cast<int64_t>(ivfpq->pq.ksub));
  }
  if (const auto* pq = dynamic_cast<const faiss::IndexPQ*>(index)) {
    centroids = std::max<int64_t>(centroids, static_cast<int64_t>(pq->pq.ksub));
  }
  return kTrainingVectorsPerCentroid * centroids;
}

// IVF answers from `nprobe` lists; FAISS's default of 1 loses much recall,
// so probe an eighth of the lists, at least 8 (all of them when fewer).
void set_search_parameters(faiss::Index* index) {
  if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index)) {
    const size_t nprobe = std::max<size_t>(8, ivf->nlist / 8);
    ivf->nprobe = std::min(nprobe, ivf->nlist);
  }
}

// An empty IndexIDMap2 (owning its sub-index) over `factory`, inner product.
std::unique_ptr<faiss::Index> make_index(int64_t dim, const std::string& factory) {
  KVRAG_CHECK(dim > 0, kInvalidArgument, "FAISS index dimension must be positive, got ", dim);
  std::unique_ptr<faiss::Index> inner(
      faiss_call(ErrorKind::kInvalidArgument, str_cat("FAISS index factory '", factory, "'"), [&] {
        return faiss::index_factory(static_cast<int>(dim), factory.c_str(),
                                    faiss::METRIC_INNER_PRODUCT);
      }));
  KVRAG_CHECK(dynamic_cast<faiss::IndexIDMap*>(inner.get()) == nullptr, kInvalidArgument,
              "FAISS index factory '", factory, "': leave out IDMap, kvrag adds its own");
  auto map = std::make_unique<faiss::IndexIDMap2>(inner.get());
  inner.release();
  map->own_fields = true;
  set_search_parameters(map.get());
  return map;
}

// The best min(k, n) of `n` (id, score) candidates, best first; equal scores
// in ascending id order so results do not depend on insertion order.
std::vector<ScoredId> top_k(std::vector<ScoredId> candidates, int64_t k) {
  const auto better = [](const ScoredId& a, const ScoredId& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  };
  const auto keep = static_cast<size_t>(std::min<int64_t>(k, candidates.size()));
  std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), better);
  candidates.resize(keep);
  return candidates;
}

// How ids leave a sub-index of IndexIDMap2. IndexIDMap::remove_ids compacts
// its table of ids as if the sub-index shifted the ids after a removed one
// down, which only the flat-codes family does. IVF lists keep the ids they
// were given, and HNSW cannot remove at all.
enum class Removal { kShifts, kIvfLists, kRebuild };

Removal removal_kind(const faiss::Index* index) {
  if (const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
    return removal_kind(pre->index);
  }
  if (dynamic_cast<const faiss::IndexFlatCodes*>(index)) return Removal::kShifts;
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index)) {
    if (ivf->direct_map.type == faiss::DirectMap::NoMap &&
        dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists)) {
      return Removal::kIvfLists;
    }
  }
  return Removal::kRebuild;
}

// Removes `gone` from an IDMap2 over an IVF index, then shifts the ids in
// the IVF lists the way IndexIDMap assumed (see Removal).
void remove_from_ivf(faiss::IndexIDMap2& map, const std::unordered_set<int64_t>& gone) {
  std::vector<FaissId> removed;  // internal ids, ascending
  for (FaissId i = 0; i < map.ntotal; ++i) {
    if (gone.count(map.id_map[i])) removed.push_back(i);
  }
  if (removed.empty()) return;
  std::vector<FaissId> external;
  for (const FaissId i : removed) external.push_back(map.id_map[i]);
  const faiss::IDSelectorBatch selector(external.size(), external.data());
  faiss_call(ErrorKind::kInternal, "FAISS removal", [&] { map.remove_ids(selector); });
  auto* lists = static_cast<faiss::ArrayInvertedLists*>(
      faiss::ivflib::extract_index_ivf(map.index)->invlists);
  for (std::vector<FaissId>& list : lists->ids) {
    for (FaissId& id : list) {
      id -= std::lower_bound(removed.begin(), removed.end(), id) - removed.begin();
    }
  }
}

// A new IDMap2 holding the vectors of `map` except `gone`: for index kinds
// that cannot remove. The sub-index is copied (through serialisation, which
// every FAISS index supports) and emptied, so training is kept.
std::unique_ptr<faiss::Index> rebuilt_without(faiss::IndexIDMap2& map,
                                              const std::unordered_set<int64_t>& gone) {
  return faiss_call(ErrorKind::kInternal, "FAISS removal by rebuilding", [&] {
    std::vector<FaissId> keep_ids;
    for (const FaissId id : map.id_map) {
      if (!gone.count(id)) keep_ids.push_back(id);
    }
    const int64_t dim = map.d;
    std::vector<float> keep_vectors(keep_ids.size() * dim);
    for (size_t i = 0; i < keep_ids.size(); ++i) {
      map.reconstruct(keep_ids[i], keep_vectors.data() + i * dim);
    }
    faiss::VectorIOWriter writer;
    faiss::write_index(map.index, &writer);
    faiss::VectorIOReader reader;
    reader.data = std::move(writer.data);
    std::unique_ptr<faiss::Index> inner(faiss::read_index(&reader));
    inner->reset();
    auto rebuilt = std::make_unique<faiss::IndexIDMap2>(inner.get());
    inner.release();
    rebuilt->own_fields = true;
    rebuilt->add_with_ids(static_cast<FaissId>(keep_ids.size()), keep_vectors.data(),
                          keep_ids.data());
    return std::unique_ptr<faiss::Index>(std::move(rebuilt));
  });
}

// FAISS checks no checksum and its reader trusts the sizes it reads, so a
// damaged file could be searched with wrong vectors or crash the reader.
// vectors.faiss is FAISS's bytes followed by this trailer: the CRC-32C of
// those bytes (u32, little-endian as written on x86-64) and a magic.
constexpr char kTrailerMagic[8] = {'K', 'V', 'R', 'A', 'G', 'V', 'X', '1'};
constexpr size_t kTrailerBytes = sizeof(uint32_t) + sizeof(kTrailerMagic);

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KVRAG_CHECK(in, kIo, path, ": cannot open FAISS index file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  KVRAG_CHECK(!in.bad(), kIo, path, ": cannot read FAISS index file");
  return bytes;
}

// The FAISS bytes of a file's contents once its trailer is checked (the
// trailer is removed from `bytes`); Error(kFormat) without a trailer (a file
// of an older kvrag, a truncated file, another file) or when the checksum
// does not match: the caller rebuilds the index from the store.
std::vector<uint8_t> checked_faiss_bytes(std::vector<uint8_t> bytes, const std::string& path) {
  const size_t size = bytes.size();
  KVRAG_CHECK(size >= kTrailerBytes && std::memcmp(bytes.data() + size - sizeof(kTrailerMagic),
                                                   kTrailerMagic, sizeof(kTrailerMagic)) == 0,
              kFormat, path,
              ": not a readable FAISS index: no kvrag checksum trailer (truncated, written by an "
              "older kvrag, or another file); rebuild the vector index");
  const size_t faiss_size = size - kTrailerBytes;
  uint32_t stored = 0;
  std::memcpy(&stored, bytes.data() + faiss_size, sizeof(stored));
  const uint32_t computed = crc32c(bytes.data(), faiss_size);
  KVRAG_CHECK(stored == computed, kFormat, path,
              ": not a readable FAISS index: checksum mismatch (stored ", hex32(stored),
              ", computed ", hex32(computed), "): the file is damaged; rebuild the vector index");
  bytes.resize(faiss_size);
  return bytes;
}

// FAISS's serialisation of `index` followed by the trailer.
std::vector<uint8_t> file_bytes(const faiss::Index* index) {
  faiss::VectorIOWriter writer;
  faiss::write_index(index, &writer);
  std::vector<uint8_t> bytes = std::move(writer.data);
  const uint32_t crc = crc32c(bytes.data(), bytes.size());
  const auto* crc_bytes = reinterpret_cast<const uint8_t*>(&crc);
  bytes.insert(bytes.end(), crc_bytes, crc_bytes + sizeof(crc));
  bytes.insert(bytes.end(), kTrailerMagic, kTrailerMagic + sizeof(kTrailerMagic));
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  KVRAG_CHECK(out, kIo, path, ": cannot write FAISS index");
}

}  // namespace

FaissIndex::FaissIndex(int64_t dim, const std::string& factory)
    : FaissIndex(dim, factory, make_index(dim, factory)) {}

FaissIndex::FaissIndex(int64_t dim, const std::string& factory, std::unique_ptr<faiss::Index> index)
    : dim_(dim), factory_(factory), index_(std::move(index)) {}

FaissIndex::~FaissIndex() = default;

std::unique_ptr<FaissIndex> FaissIndex::load(const std::string& path, int64_t dim,
                                             const std::string& factory) {
  KVRAG_CHECK(std::filesystem::exists(path), kNotFound, path, ": no such FAISS index file");
  faiss::VectorIOReader reader;
  reader.data = checked_faiss_bytes(read_file_bytes(path), path);
  std::unique_ptr<faiss::Index> loaded(faiss_call(ErrorKind::kFormat,
                                                  str_cat(path, ": not a readable FAISS index"),
                                                  [&] { return faiss::read_index(&reader); }));
  auto* map = dynamic_cast<faiss::IndexIDMap2*>(loaded.get());
  KVRAG_CHECK(map != nullptr, kFormat, path, ": not a kvrag vector index (no IndexIDMap2)");
  KVRAG_CHECK(map->d == dim, kFormat, path, ": vectors of dimension ", map->d,
              ", the model's embeddings have ", dim, "; rebuild the vector index");
  KVRAG_CHECK(map->metric_type == faiss::METRIC_INNER_PRODUCT, kFormat, path,
              ": FAISS index does not use inner product");

  auto fresh = std::make_unique<FaissIndex>(dim, factory);
  const std::string stored_kind = describe(map->index);
  const std::string wanted_kind = describe(id_map(*fresh->index_).index);
  if (stored_kind == "Flat" && !fresh->index_->is_trained) {
    // The pending vectors of an index not yet trained (see save()).
    const auto* flat = static_cast<const faiss::IndexFlat*>(map->index);
    fresh->pending_ids_.assign(map->id_map.begin(), map->id_map.end());
    fresh->pending_vectors_.assign(flat->get_xb(), flat->get_xb() + map->ntotal * dim);
    fresh->train_if_ready();
    return fresh;
  }
  KVRAG_CHECK(stored_kind == wanted_kind, kFormat, path, ": holds a FAISS '", stored_kind,
              "' index, the index is configured for '", factory, "' ('", wanted_kind,
              "'); rebuild the vector index");
  set_search_parameters(loaded.get());
  return std::unique_ptr<FaissIndex>(new FaissIndex(dim, factory, std::move(loaded)));
}

void FaissIndex::add(std::span<const int64_t> ids, std::span<const float> vectors) {
  KVRAG_CHECK(vectors.size() == ids.size() * static_cast<size_t>(dim_), kInvalidArgument,
              "FaissIndex::add: ", ids.size(), " ids need ", ids.size() * dim_,
              " floats (dimension ", dim_, "), got ", vectors.size());
  std::lock_guard lock(mutex_);
  std::unordered_set<int64_t> held(pending_ids_.begin(), pending_ids_.end());
  held.reserve(held.size() + ids.size());
  const auto& rev_map = id_map(*index_).rev_map;
  for (const int64_t id : ids) {
    KVRAG_CHECK(rev_map.count(id) == 0 && held.insert(id).second, kInvalidArgument,
                "FaissIndex::add: id ", id, " is already in the index");
  }
  if (index_->is_trained) {
    faiss_call(ErrorKind::kInternal, "FAISS add", [&] {
      index_->add_with_ids(static_cast<FaissId>(ids.size()), vectors.data(), ids.data());
    });
    return;
  }
  pending_ids_.insert(pending_ids_.end(), ids.begin(), ids.end());
  pending_vectors_.insert(pending_vectors_.end(), vectors.begin(), vectors.end());
  train_if_ready();
}

void FaissIndex::train_if_ready() {
  const auto n = static_cast<int64_t>(pending_ids_.size());
  if (n == 0 || n < training_vectors_needed(id_map(*index_).index)) return;
  faiss_call(ErrorKind::kInternal, str_cat("FAISS training of '", factory_, "'"), [&] {
    index_->train(n, pending_vectors_.data());
    index_->add_with_ids(n, pending_vectors_.data(), pending_ids_.data());
  });
  pending_ids_.clear();
  pending_vectors_.clear();
}

void FaissIndex::remove(std::span<const int64_t> ids) {
  std::lock_guard lock(mutex_);
  const std::unordered_set<int64_t> gone(ids.begin(), ids.end());
  size_t kept = 0;
  for (size_t i = 0; i < pending_ids_.size(); ++i) {
    if (gone.count(pending_ids_[i])) continue;
    pending_ids_[kept] = pending_ids_[i];
    std::copy_n(pending_vectors_.begin() + i * dim_, dim_, pending_vectors_.begin() + kept * dim_);
    ++kept;
  }
  pending_ids_.resize(kept);
  pending_vectors_.resize(kept * dim_);
  if (index_->ntotal == 0) return;

  faiss::IndexIDMap2& map = id_map(*index_);
  switch (removal_kind(map.index)) {
    case Removal::kShifts: {
      const faiss::IDSelectorBatch selector(ids.size(), ids.data());
      faiss_call(ErrorKind::kInternal, "FAISS removal", [&] { map.remove_ids(selector); });
      return;
    }
    case Removal::kIvfLists:
      remove_from_ivf(map, gone);
      return;
    case Removal::kRebuild:
      index_ = rebuilt_without(map, gone);
      return;
  }
}

std::vector<ScoredId> FaissIndex::search(std::span<const float> query, int64_t k) const {
  KVRAG_CHECK(query.size() == static_cast<size_t>(dim_), kInvalidArgument,
              "FaissIndex::search: query of ", query.size(), " floats, the index has dimension ",
              dim_);
  KVRAG_CHECK(k >= 0, kInvalidArgument, "FaissIndex::search: k must be >= 0, got ", k);
  std::shared_lock lock(mutex_);
  if (!pending_ids_.empty()) {
    // Not trained yet, so every vector is pending: exact search over them.
    std::vector<ScoredId> candidates(pending_ids_.size());
    for (size_t i = 0; i < pending_ids_.size(); ++i) {
      const float* v = pending_vectors_.data() + i * dim_;
      float score = 0.0f;
      for (int64_t j = 0; j < dim_; ++j) score += v[j] * query[j];
      candidates[i] = {pending_ids_[i], score};
    }
    return top_k(std::move(candidates), k);
  }
  const int64_t n = std::min<int64_t>(k, index_->ntotal);
  if (n == 0) return {};
  std::vector<float> scores(n);
  std::vector<FaissId> labels(n);
  faiss_call(ErrorKind::kInternal, "FAISS search",
             [&] { index_->search(1, query.data(), n, scores.data(), labels.data()); });
  std::vector<ScoredId> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] >= 0) out.push_back({labels[i], scores[i]});  // -1: fewer found
  }
  return out;
}

int64_t FaissIndex::size() const {
  std::shared_lock lock(mutex_);
  return static_cast<int64_t>(pending_ids_.size()) + index_->ntotal;
}

std::vector<int64_t> FaissIndex::ids() const {
  std::shared_lock lock(mutex_);
  std::vector<int64_t> out(pending_ids_.begin(), pending_ids_.end());
  const auto& held = id_map(*index_).id_map;
  out.insert(out.end(), held.begin(), held.end());
  std::sort(out.begin(), out.end());
  return out;
}

void FaissIndex::save(const std::string& path) const {
  std::shared_lock lock(mutex_);
  // An untrained index holds nothing: its pending vectors are written as a
  // flat index instead, which load() recognises.
  std::unique_ptr<faiss::Index> pending_form;
  if (!pending_ids_.empty()) {
    pending_form = make_index(dim_, "Flat");
    pending_form->add_with_ids(static_cast<FaissId>(pending_ids_.size()), pending_vectors_.data(),
                               pending_ids_.data());
  }
  const faiss::Index* to_write = pending_form ? pending_form.get() : index_.get();
  const std::string temp = str_cat(path, ".tmp.", ::getpid());
  try {
    write_file_bytes(temp, faiss_call(ErrorKind::kIo, str_cat(path, ": cannot write FAISS index"),
                                      [&] { return file_bytes(to_write); }));
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    KVRAG_CHECK(!ec, kIo, path, ": cannot replace FAISS index: ", ec.message());
  } catch (const Error&) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
}

}  // namespace kvrag
