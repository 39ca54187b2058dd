// A Redis Cluster client over hiredis (blocking connections): the slot map
// read with CLUSTER SLOTS, commands routed by the CRC16 hash slot of their
// key, one pipeline per node, and the cluster's redirections and failures
// handled (https://redis.io/docs/reference/cluster-spec/):
//   MOVED       the slot has a new owner: the map is refreshed, the command
//               retried there;
//   ASK         the slot is being migrated and the key is on the target:
//               retried there once, after ASKING, the map left as it is;
//   TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, READONLY and connection
//               errors (a master killed, before its replica is promoted):
//               the map is refreshed from any node that answers and the
//               command retried with backoff, until a deadline per call.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/redis_connection.h"

namespace kvrag::redis {

constexpr int kSlots = 16384;

// CRC16-CCITT (XMODEM), the key hash of the cluster spec's appendix A:
// crc16("123456789") == 0x31C3.
uint16_t crc16(std::string_view data);
// The hash slot of `key`: CRC16 mod 16384 of the key, or of its hash tag,
// the bytes between its first '{' and the next '}' when they are not empty.
int key_slot(std::string_view key);

struct ClusterOptions {
  std::vector<NodeAddress> seeds;  // any nodes of the cluster; one answering is enough
  // Reads (Command::read_only) go to a replica of the slot when it has one:
  // more read throughput, but a read may miss a write made just before it.
  bool read_from_replicas = false;
  // The total time one call may spend retrying before it gives up.
  std::chrono::milliseconds deadline{10000};
  ConnectionOptions connection;
};

// One command, routed by the hash slot of `key`.
struct Command {
  std::string_view key;
  std::vector<std::string_view> args;  // the whole command, name first
  bool read_only = false;              // may be served by a replica
};

// Thread-safe: calls from several threads share one connection per node,
// each held by one call at a time.
class Cluster {
 public:
  // Reads the slot map from the first seed that answers; none answering
  // (or no seeds) is Error(kUnavailable) (kInvalidArgument).
  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Runs `commands`, one pipeline per node, every node's pipeline sent
  // before any reply is read; the replies in the order of `commands`.
  // Redirections and transient failures are retried as the header says; an
  // error reply of the command itself (WRONGTYPE, a script error) is
  // returned as it is. A command still failing at the deadline is
  // Error(kUnavailable) naming its key, node and last error. Commands may
  // run more than once (a retry after a lost connection): they must be
  // idempotent.
  std::vector<Reply> run(std::span<const Command> commands);
  // The masters of the slot map, each once.
  std::vector<NodeAddress> masters() const;
  // Runs one command on `node` as it is, no redirection or retry: for
  // commands about the node itself (SCAN, INFO).
  Reply run_on(const NodeAddress& node, std::span<const std::string_view> args);

 private:
  struct Node;
  struct SlotMap;
  struct Pending;
  struct Round;

  std::shared_ptr<const SlotMap> slot_map() const;
  std::shared_ptr<Node> node(const NodeAddress& address);
  // Where `pending` goes next; nullopt when no node is known for its slot.
  std::optional<NodeAddress> route(const Pending& pending, const SlotMap& map) const;
  void run_round(Round& round);
  void send_group(Node& node, Round& round, std::span<const size_t> group);
  void read_group(Node& node, Round& round, std::span<const size_t> group);
  // Takes the reply of command `index` from `node`: kept, or the command
  // queued for retry after a redirection or a transient error.
  void settle(Round& round, size_t index, const NodeAddress& node, Reply reply);
  // Queues command `index` for retry after a failure to reach `node`.
  void fail(Round& round, size_t index, const NodeAddress& node, std::string why);
  [[noreturn]] void give_up(const Round& round, std::chrono::steady_clock::time_point start) const;
  // Reads the slot map from the first node that answers, unless the map
  // changed since `seen_epoch`.
  void refresh_slot_map(uint64_t seen_epoch);
  // The slot map as `from` sees it; nullopt, with `why`, when it cannot say.
  std::optional<SlotMap> read_slot_map(const NodeAddress& from, std::string& why);
  void note_moved(int slot, const NodeAddress& owner);
  std::vector<NodeAddress> known_nodes() const;

  const ClusterOptions options_;
  mutable std::mutex map_mutex_;  // guards map_
  std::shared_ptr<const SlotMap> map_;
  std::mutex refresh_mutex_;  // one refresh at a time
  std::mutex nodes_mutex_;    // guards nodes_
  std::map<NodeAddress, std::shared_ptr<Node>> nodes_;
};

}  // namespace kvrag::redis
