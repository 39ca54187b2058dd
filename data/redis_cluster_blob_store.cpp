#include "data/redis_cluster_blob_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace kvrag {

namespace {

using redis::Command;
using redis::Reply;

// KEYS[1] the blob's hash, KEYS[2] its bucket's counters; ARGV[1] the
// bytes, ARGV[2] the tokens. The counters move by the difference from the
// blob replaced, so that a put repeated (a retry) or replacing counts once.
constexpr std::string_view kPutScript = R"lua(
local old_bytes = redis.call('HSTRLEN', KEYS[1], 'data')
local old_tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or 0)
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'tokens', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'bytes', #ARGV[1] - old_bytes)
redis.call('HINCRBY', KEYS[2], 'tokens', tonumber(ARGV[2]) - old_tokens)
return 1
)lua";

// KEYS as for kPutScript. Only a blob that was there is subtracted.
constexpr std::string_view kRemoveScript = R"lua(
local old_bytes = redis.call('HSTRLEN', KEYS[1], 'data')
local old_tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or 0)
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'bytes', -old_bytes)
  redis.call('HINCRBY', KEYS[2], 'tokens', -old_tokens)
end
return 1
)lua";

int bucket_of(int64_t chunk_id) {
  const int64_t bucket = chunk_id % RedisClusterBlobStore::kBuckets;
  return static_cast<int>(bucket < 0 ? bucket + RedisClusterBlobStore::kBuckets : bucket);
}

std::string checked_prefix(std::string prefix) {
  const bool valid = !prefix.empty() && prefix.size() <= 128 &&
                     std::all_of(prefix.begin(), prefix.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                     });
  KVRAG_CHECK(valid, kInvalidArgument,
              "redis blob store: the prefix must be 1 to 128 letters, digits, '_', '-' or '.', "
              "got '",
              prefix, "'");
  return prefix;
}

// Throws Error(kFormat) naming `key` when `reply` is an error reply.
void check_reply(const redisReply& reply, std::string_view key) {
  const auto error = redis::error_text(reply);
  KVRAG_CHECK(!error, kFormat, "redis blob store: key '", key, "': ", *error);
}

// A counter field of HMGET's answer: nil (no blob counted yet) is 0.
int64_t counter(const redisReply& field, std::string_view key) {
  if (field.type == REDIS_REPLY_NIL) return 0;
  int64_t value = 0;
  const bool ok = field.type == REDIS_REPLY_STRING &&
                  std::from_chars(field.str, field.str + field.len, value).ec == std::errc();
  KVRAG_CHECK(ok, kFormat, "redis blob store: key '", key,
              "' holds a counter that is not a number");
  return value;
}

bool parse_flag(std::string_view name, std::string_view value) {
  if (value == "1" || value == "true") return true;
  if (value == "0" || value == "false") return false;
  KVRAG_THROW(kInvalidArgument, "redis URI: ", name, " must be 0, 1, true or false, got '", value,
              "'");
}

void apply_uri_parameter(std::string_view parameter, RedisClusterBlobStoreOptions& options) {
  const size_t equals = parameter.find('=');
  KVRAG_CHECK(equals != std::string_view::npos, kInvalidArgument,
              "redis URI: a parameter is name=value, got '", parameter, "'");
  const std::string_view name = parameter.substr(0, equals);
  const std::string_view value = parameter.substr(equals + 1);
  if (name == "prefix") {
    options.prefix = value;
  } else if (name == "replica_reads") {
    options.cluster.read_from_replicas = parse_flag(name, value);
  } else {
    KVRAG_THROW(kInvalidArgument, "redis URI: unknown parameter '", name,
                "' (known: prefix, replica_reads)");
  }
}

// The parts of `text` between `separator`s.
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

RedisClusterBlobStoreOptions parse_redis_cluster_uri(const std::string& uri) {
  constexpr std::string_view kScheme = "redis://";
  KVRAG_CHECK(uri.starts_with(kScheme), kInvalidArgument, "a redis URI starts with redis://, got '",
              uri, "'");
  const std::string_view rest = std::string_view(uri).substr(kScheme.size());
  const size_t query = rest.find('?');
  RedisClusterBlobStoreOptions options;
  for (const std::string_view node : split(rest.substr(0, query), ',')) {
    options.cluster.seeds.push_back(redis::parse_node_address(node));
  }
  if (query != std::string_view::npos) {
    for (const std::string_view parameter : split(rest.substr(query + 1), '&')) {
      apply_uri_parameter(parameter, options);
    }
  }
  return options;
}

RedisClusterBlobStore::RedisClusterBlobStore(RedisClusterBlobStoreOptions options)
    : prefix_(checked_prefix(std::move(options.prefix))), cluster_(std::move(options.cluster)) {}

RedisClusterBlobStore::~RedisClusterBlobStore() = default;

std::string RedisClusterBlobStore::blob_key(int64_t chunk_id) const {
  return str_cat(prefix_, ":blob:{", bucket_of(chunk_id), "}:", chunk_id);
}

std::string RedisClusterBlobStore::stats_key(int bucket) const {
  return str_cat(prefix_, ":stats:{", bucket, "}");
}

void RedisClusterBlobStore::put(int64_t chunk_id, const MemoryBlob& blob) {
  const std::string key = blob_key(chunk_id);
  const std::string counters = stats_key(bucket_of(chunk_id));
  const std::string tokens = std::to_string(blob.tokens);
  const std::string_view bytes(reinterpret_cast<const char*>(blob.bytes.data()), blob.bytes.size());
  const Command command{key, {"EVAL", kPutScript, "2", key, counters, bytes, tokens}};
  const std::vector<Reply> replies = cluster_.run({&command, 1});
  check_reply(*replies[0], key);
}

std::vector<std::optional<Bytes>> RedisClusterBlobStore::get_many(
    std::span<const int64_t> chunk_ids) const {
  std::vector<std::string> keys;
  keys.reserve(chunk_ids.size());
  for (const int64_t id : chunk_ids) keys.push_back(blob_key(id));
  std::vector<Command> commands;
  commands.reserve(keys.size());
  for (const std::string& key : keys) {
    commands.push_back({key, {"HGET", key, "data"}, /*read_only=*/true});
  }
  const std::vector<Reply> replies = cluster_.run(commands);
  std::vector<std::optional<Bytes>> blobs(replies.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    const redisReply& reply = *replies[i];
    check_reply(reply, keys[i]);
    if (reply.type == REDIS_REPLY_NIL) continue;
    KVRAG_CHECK(reply.type == REDIS_REPLY_STRING, kFormat, "redis blob store: key '", keys[i],
                "' does not hold a blob");
    const auto* bytes = reinterpret_cast<const uint8_t*>(reply.str);
    blobs[i].emplace(bytes, bytes + reply.len);
  }
  return blobs;
}

void RedisClusterBlobStore::remove(std::span<const int64_t> chunk_ids) {
  std::vector<std::pair<std::string, std::string>> keys;  // (blob, its counters)
  keys.reserve(chunk_ids.size());
  for (const int64_t id : chunk_ids) keys.emplace_back(blob_key(id), stats_key(bucket_of(id)));
  std::vector<Command> commands;
  commands.reserve(keys.size());
  for (const auto& [key, counters] : keys) {
    commands.push_back({key, {"EVAL", kRemoveScript, "2", key, counters}});
  }
  const std::vector<Reply> replies = cluster_.run(commands);
  for (size_t i = 0; i < replies.size(); ++i) check_reply(*replies[i], keys[i].first);
}

BlobStats RedisClusterBlobStore::stats() const {
  std::vector<std::string> keys;
  keys.reserve(kBuckets);
  for (int bucket = 0; bucket < kBuckets; ++bucket) keys.push_back(stats_key(bucket));
  std::vector<Command> commands;
  commands.reserve(keys.size());
  for (const std::string& key : keys) {
    commands.push_back({key, {"HMGET", key, "bytes", "tokens"}, /*read_only=*/true});
  }
  const std::vector<Reply> replies = cluster_.run(commands);
  BlobStats stats;
  for (size_t i = 0; i < replies.size(); ++i) {
    const redisReply& reply = *replies[i];
    check_reply(reply, keys[i]);
    KVRAG_CHECK(reply.type == REDIS_REPLY_ARRAY && reply.elements == 2, kFormat,
                "redis blob store: key '", keys[i], "' does not hold counters");
    stats.bytes += counter(*reply.element[0], keys[i]);
    stats.tokens += counter(*reply.element[1], keys[i]);
  }
  return stats;
}

std::vector<std::string> RedisClusterBlobStore::namespace_keys(const redis::NodeAddress& master) {
  const std::string pattern = prefix_ + ":*";
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    const std::string_view args[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
    const Reply reply = cluster_.run_on(master, args);
    check_reply(*reply, pattern);
    KVRAG_CHECK(reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                    reply->element[0]->type == REDIS_REPLY_STRING &&
                    reply->element[1]->type == REDIS_REPLY_ARRAY,
                kFormat, "redis ", master.name(), ": malformed SCAN reply");
    cursor.assign(reply->element[0]->str, reply->element[0]->len);
    const redisReply& found = *reply->element[1];
    for (size_t i = 0; i < found.elements; ++i) {
      keys.emplace_back(found.element[i]->str, found.element[i]->len);
    }
  } while (cursor != "0");
  return keys;
}

void RedisClusterBlobStore::drop() {
  for (const redis::NodeAddress& master : cluster_.masters()) {
    const std::vector<std::string> keys = namespace_keys(master);
    std::vector<Command> commands;
    commands.reserve(keys.size());
    for (const std::string& key : keys) commands.push_back({key, {"DEL", key}});
    const std::vector<Reply> replies = cluster_.run(commands);
    for (size_t i = 0; i < replies.size(); ++i) check_reply(*replies[i], keys[i]);
  }
}

}  // namespace kvrag
