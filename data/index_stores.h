// The one place that chooses a store implementation for an index: above
// data/, code holds the MetadataStore and BlobStore interfaces only.
#pragma once

#include <memory>
#include <string>

#include "data/blob_store.h"
#include "data/metadata_store.h"

namespace kvrag {

// The stores of one index; they may share one database connection, which
// lives as long as either does.
struct IndexStores {
  std::unique_ptr<MetadataStore> metadata;
  std::unique_ptr<BlobStore> blobs;
};

// Opens or creates the stores at `location`: the path of an index folder's
// store.sqlite, whose metadata and blobs then share one SQLite connection
// (data/sqlite_store.h says what opening checks and throws), or a
// postgresql:// URI (below).
IndexStores open_index_stores(const std::string& location);

// True when `location` is a URI of stores shared over the network (a
// postgresql:// URI), not a path.
bool is_store_uri(const std::string& location);
// `location` as messages may show it: a URI without its password.
std::string displayed_location(const std::string& location);

// Opens or creates the index in the schema a postgresql:// URI names
// (data/postgres_store.h: the URI, what opening checks and throws). Its
// metadata lives in the schema; so do its blobs, sharing its connections,
// unless blobs= names a Redis Cluster (redis://host:port,...; its options
// percent-encoded, %3Fprefix=NAME), whose keys then carry the prefix NAME,
// by default the schema's name.
IndexStores open_postgres_index_stores(const std::string& uri);

// Opens the blob store at `uri`, one separate from the metadata's database:
// redis://host:port[,host:port...][?prefix=NAME] is a Redis Cluster
// (data/redis_cluster_blob_store.h says what it throws); another scheme is
// Error(kInvalidArgument).
std::unique_ptr<BlobStore> open_blob_store(const std::string& uri);

}  // namespace kvrag
