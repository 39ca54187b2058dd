#include "tests/redis_admin.h"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "core/error.h"

namespace kvrag::testing {

using namespace std::chrono_literals;
using redis::Connection;
using redis::NodeAddress;
using redis::Reply;

Reply call(const NodeAddress& node, const std::vector<std::string>& args) {
  Connection connection(node, {});
  const std::vector<std::string_view> views(args.begin(), args.end());
  Reply reply = connection.command(views);
  if (const auto error = redis::error_text(*reply)) {
    throw std::runtime_error(str_cat(node.name(), " ", args[0], " ", args[1], ": ", *error));
  }
  return reply;
}

std::string text_of(const Reply& reply) { return {reply->str, reply->len}; }

std::string info_field(const NodeAddress& node, const std::string& section,
                       const std::string& field) {
  const std::string info = text_of(call(node, {"INFO", section}));
  const size_t at = info.find(field + ":");
  if (at == std::string::npos) return "";
  const size_t start = at + field.size() + 1;
  return info.substr(start, info.find('\r', start) - start);
}

namespace {

ClusterNode slots_node(const redisReply& node) {
  return {{std::string(node.element[0]->str, node.element[0]->len),
           static_cast<int>(node.element[1]->integer)},
          std::string(node.element[2]->str, node.element[2]->len)};
}

}  // namespace

ClusterNode slot_master(const NodeAddress& asked, int slot) {
  const Reply slots = call(asked, {"CLUSTER", "SLOTS"});
  for (size_t r = 0; r < slots->elements; ++r) {
    const redisReply& range = *slots->element[r];
    if (range.element[0]->integer <= slot && slot <= range.element[1]->integer) {
      return slots_node(*range.element[2]);
    }
  }
  throw std::runtime_error(str_cat("no master serves slot ", slot));
}

std::vector<ClusterNode> masters(const NodeAddress& asked) {
  std::vector<ClusterNode> found;
  const Reply slots = call(asked, {"CLUSTER", "SLOTS"});
  for (size_t r = 0; r < slots->elements; ++r) {
    const ClusterNode master = slots_node(*slots->element[r]->element[2]);
    bool known = false;
    for (const ClusterNode& m : found) known = known || m.id == master.id;
    if (!known) found.push_back(master);
  }
  return found;
}

ClusterNode other_master(const NodeAddress& asked, const ClusterNode& than) {
  for (const ClusterNode& master : masters(asked)) {
    if (master.id != than.id) return master;
  }
  throw std::runtime_error("the cluster has one master");
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    try {
      if (done()) return true;
    } catch (const std::exception&) {
      // a node restarting or not answering yet: poll again
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

namespace {

bool cluster_state_ok(const NodeAddress& node) {
  return text_of(call(node, {"CLUSTER", "INFO"})).find("cluster_state:ok") != std::string::npos;
}

// As `asked` sees it: no node failing, and every master serving slots (a
// master demoted by a failover has become a replica again).
bool topology_settled(const NodeAddress& asked) {
  const std::string nodes = text_of(call(asked, {"CLUSTER", "NODES"}));
  size_t start = 0;
  for (size_t end; (end = nodes.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = nodes.substr(start, end - start);
    if (line.find("fail") != std::string::npos) return false;
    const bool master = line.find("master") != std::string::npos;
    const bool serves_slots = line.find(" connected ") != std::string::npos;
    if (master && !serves_slots) return false;
  }
  return true;
}

}  // namespace

// The steps of moving a slot, as `redis-cli --cluster reshard` takes them.
void begin_migration(int slot, const ClusterNode& from, const ClusterNode& to) {
  call(to.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from.id});
  call(from.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to.id});
}

void migrate_keys(const ClusterNode& from, const ClusterNode& to,
                  const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  std::vector<std::string> args = {
      "MIGRATE", to.address.host, std::to_string(to.address.port), "", "0", "5000", "KEYS"};
  args.insert(args.end(), keys.begin(), keys.end());
  call(from.address, args);
}

namespace {

std::vector<std::string> keys_in_slot(const ClusterNode& node, int slot) {
  const Reply keys = call(node.address, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"});
  std::vector<std::string> found;
  for (size_t i = 0; i < keys->elements; ++i) {
    found.emplace_back(keys->element[i]->str, keys->element[i]->len);
  }
  return found;
}

}  // namespace

void finish_migration(int slot, const ClusterNode& from, const ClusterNode& to) {
  migrate_keys(from, to, keys_in_slot(from, slot));
  call(to.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
  call(from.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
  for (const ClusterNode& master : masters(to.address)) {
    call(master.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
  }
}

void move_slot(int slot, const ClusterNode& from, const ClusterNode& to) {
  begin_migration(slot, from, to);
  finish_migration(slot, from, to);
}

int64_t count_keys_in_slot(const ClusterNode& node, int slot, const std::string& prefix) {
  const std::string count =
      std::to_string(call(node.address, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)})->integer);
  const Reply keys = call(node.address, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), count});
  int64_t found = 0;
  for (size_t i = 0; i < keys->elements; ++i) {
    found += std::string(keys->element[i]->str, keys->element[i]->len).starts_with(prefix + ":");
  }
  return found;
}

// ---------------------------------------------------------------- MasterKill

MasterKill::MasterKill(const NodeAddress& seed, int slot)
    : seed_(seed), victim_(slot_master(seed, slot)), slot_(slot) {
  config_file_ = info_field(victim_.address, "server", "config_file");
  pid_ = std::stoi(info_field(victim_.address, "server", "process_id"));
  if (config_file_.empty()) throw std::runtime_error("the master has no config file to restart");
}

// WAIT on a write of this connection: the replication stream orders it after
// every write made before.
void MasterKill::kill_master(const std::string& marker_key) {
  Connection connection(victim_.address, {});
  const std::string_view set[] = {"SET", marker_key, "1"};
  const std::string_view wait[] = {"WAIT", "1", "5000"};
  connection.command(set);
  if (connection.command(wait)->integer < 1) throw std::runtime_error("the replica lags");
  if (::kill(pid_, SIGKILL) != 0) throw std::runtime_error("kill failed");
}

bool MasterKill::replica_took_over() const {
  return wait_until([&] { return slot_master(seed_, slot_).id != victim_.id; }, 15s);
}

bool MasterKill::restore() const {
  if (std::system(("redis-server " + config_file_).c_str()) != 0) return false;
  const NodeAddress& node = victim_.address;
  const bool synced = wait_until(
      [&] {
        return info_field(node, "replication", "role") == "slave" &&
               info_field(node, "replication", "master_link_status") == "up";
      },
      30s);
  if (!synced) return false;
  call(node, {"CLUSTER", "FAILOVER"});
  return wait_until(
      [&] {
        if (slot_master(seed_, slot_).id != victim_.id || !topology_settled(seed_)) {
          return false;
        }
        for (const ClusterNode& master : masters(seed_)) {
          if (!cluster_state_ok(master.address)) return false;
        }
        return true;
      },
      30s);
}

}  // namespace kvrag::testing
