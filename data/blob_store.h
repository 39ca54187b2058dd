// The cached memories of an index behind one interface: one blob per chunk
// (data/kv_blob.h: per-layer K/V or the encoder output), keyed by chunk id.
// The bytes are opaque here; readers check them (decode_kv_blob).
//
// Implementations: SqliteBlobStore (the chunk_kv table of store.sqlite,
// data/sqlite_blob_store.h) and PostgresBlobStore (the chunk_blobs table of
// a PostgreSQL schema, data/postgres_blob_store.h). Every method may be
// called from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/bytes.h"

namespace kvrag {

// One chunk's cached memory as stored.
struct MemoryBlob {
  Bytes bytes;         // data/kv_blob.h layout
  int64_t tokens = 0;  // memory tokens (rows) the blob holds
};

struct BlobStats {
  int64_t bytes = 0;   // Σ bytes of the blobs
  int64_t tokens = 0;  // Σ tokens of the blobs
};

// Takes the blob of the index'th chunk asked for (nullopt: none stored).
using BlobSink = std::function<void(size_t index, std::optional<Bytes> blob)>;

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Stores the blob of `chunk_id`, replacing one stored before. Called
  // inside the MetadataStore's write_transaction that adds the chunk: a
  // store sharing the metadata's database commits or rolls back with it;
  // a separate one writes at once, before the metadata commits, so a crash
  // leaves a blob nothing names, never a chunk without its blob.
  virtual void put(int64_t chunk_id, const MemoryBlob& blob) = 0;
  // The blobs of `chunk_ids`, in order, nullopt for a chunk with none. The
  // bytes are read straight into the buffers returned (no staging copy):
  // this is the read on every ask's path.
  virtual std::vector<std::optional<Bytes>> get_many(std::span<const int64_t> chunk_ids) const = 0;
  // get_many, each blob handed to `take` (with its index in chunk_ids) as
  // it comes, in order. A store that reads blobs one at a time (SQLite)
  // hands each over right after reading it, while its bytes are still in
  // the CPU's caches: the reader's checks then cost no second pass over
  // memory. The default hands them over after get_many. An exception from
  // `take` ends the read and propagates.
  virtual void get_each(std::span<const int64_t> chunk_ids, const BlobSink& take) const;
  // Whether get_many's work runs on the calling thread's core (SQLite: a
  // copy out of the file's pages) rather than waiting mostly on another
  // process (PostgreSQL, Redis): a reader overlapping it with computation
  // leaves it a core (CoreReservation) only where it does.
  virtual bool reads_on_own_core() const { return false; }
  // Removes the blobs of `chunk_ids` that are stored; others are ignored.
  virtual void remove(std::span<const int64_t> chunk_ids) = 0;
  virtual BlobStats stats() const = 0;

  // The blob of one chunk, or nullopt: get_many of one.
  std::optional<Bytes> get(int64_t chunk_id) const;
};

}  // namespace kvrag
