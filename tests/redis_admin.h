// Administration of a Redis Cluster for tests (tests/test_redis_cluster.cpp):
// where a slot lives, moving it between masters as `redis-cli --cluster
// reshard` does, and killing a master and bringing it back. Every step talks
// to the nodes directly (no redirection) and throws std::runtime_error on an
// error reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/redis_cluster.h"

namespace kvrag::testing {

// Runs one command on `node` on a connection of its own.
redis::Reply call(const redis::NodeAddress& node, const std::vector<std::string>& args);
std::string text_of(const redis::Reply& reply);
// The value of `field` in INFO `section` of `node`; "" when it has none.
std::string info_field(const redis::NodeAddress& node, const std::string& section,
                       const std::string& field);

struct ClusterNode {
  redis::NodeAddress address;
  std::string id;  // CLUSTER MYID
};

// The master of `slot`, as `asked` sees it.
ClusterNode slot_master(const redis::NodeAddress& asked, int slot);
// The masters serving slots, as `asked` sees them.
std::vector<ClusterNode> masters(const redis::NodeAddress& asked);
ClusterNode other_master(const redis::NodeAddress& asked, const ClusterNode& than);

// Polls `done` every 100 ms for up to `limit` (an exception counts as not
// yet); false if it never held.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit);

// Moving a slot: IMPORTING on the target, MIGRATING on the source, MIGRATE
// of its keys, then SETSLOT NODE on every master.
void begin_migration(int slot, const ClusterNode& from, const ClusterNode& to);
void migrate_keys(const ClusterNode& from, const ClusterNode& to,
                  const std::vector<std::string>& keys);
// Migrates what is left of the slot and gives it to `to`.
void finish_migration(int slot, const ClusterNode& from, const ClusterNode& to);
void move_slot(int slot, const ClusterNode& from, const ClusterNode& to);
// The keys of `slot` on `node` that start with "PREFIX:": other indexes'
// blobs share the slot (a bucket's hash tag does not hold the prefix).
int64_t count_keys_in_slot(const ClusterNode& node, int slot, const std::string& prefix);

// The master of `slot`, killed by pid and brought back: restarted from its
// configuration file, it rejoins as a replica of the master that replaced
// it, syncs, and takes its slots back with CLUSTER FAILOVER, leaving the
// cluster as it was.
class MasterKill {
 public:
  // Reads the master's pid and configuration file (INFO server).
  MasterKill(const redis::NodeAddress& seed, int slot);

  const ClusterNode& victim() const { return victim_; }
  // Makes sure its replica holds every write made so far, then kills the
  // master (SIGKILL).
  void kill_master(const std::string& marker_key);
  // Whether a replica serves the slot within 15 s.
  bool replica_took_over() const;
  // Restarts and fails back the master; true when the cluster is whole
  // again (every master serving slots, state ok everywhere) within 60 s.
  bool restore() const;

 private:
  redis::NodeAddress seed_;
  ClusterNode victim_;
  int slot_;
  std::string config_file_;
  int pid_ = 0;
};

}  // namespace kvrag::testing
