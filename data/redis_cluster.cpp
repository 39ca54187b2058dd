#include "data/redis_cluster.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <thread>
#include <utility>

#include "core/error.h"

namespace kvrag::redis {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The wait before retry `attempt` (0-based) after a transient failure:
// doubling from 25 ms to 400 ms, so that a failover of a few seconds costs a
// dozen tries rather than hundreds.
milliseconds backoff(int attempt) {
  return std::min(milliseconds(400), milliseconds(25 << std::min(attempt, 4)));
}

// "MOVED 3999 127.0.0.1:7101" or "ASK ..." as (slot, address).
std::pair<int, NodeAddress> parse_redirect(std::string_view error) {
  const size_t slot_at = error.find(' ') + 1;
  const size_t address_at = error.find(' ', slot_at);
  int slot = -1;
  const auto [end, ec] = std::from_chars(error.data() + slot_at, error.data() + address_at, slot);
  KVRAG_CHECK(slot_at != 0 && address_at != std::string_view::npos && ec == std::errc() &&
                  slot >= 0 && slot < kSlots,
              kFormat, "redis cluster: malformed redirection '", error, "'");
  return {slot, parse_node_address(error.substr(address_at + 1))};
}

// Error codes (an error reply's first word) after which the same command may
// succeed later: a slot mid-migration (TRYAGAIN), a cluster without a master
// for some slot or a node whose master is down, during a failover
// (CLUSTERDOWN, MASTERDOWN), a node loading its data (LOADING), a write
// that reached a demoted master (READONLY).
bool is_transient(std::string_view code) {
  return code == "TRYAGAIN" || code == "CLUSTERDOWN" || code == "MASTERDOWN" || code == "LOADING" ||
         code == "READONLY";
}

constexpr std::string_view kAsking[] = {"ASKING"};
constexpr std::string_view kClusterSlots[] = {"CLUSTER", "SLOTS"};

}  // namespace

uint16_t crc16(std::string_view data) {
  // Polynomial 0x1021, initial value 0, no reflection; bit by bit, since
  // keys are a few dozen bytes.
  uint16_t crc = 0;
  for (const char c : data) {
    crc ^= static_cast<uint16_t>(static_cast<uint8_t>(c) << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

int key_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & (kSlots - 1);
}

struct Cluster::Node {
  explicit Node(NodeAddress a) : address(std::move(a)) {}

  const NodeAddress address;
  // Held by one call from its first write on the connection to its last
  // read, so that replies pair with their commands.
  std::mutex mutex;
  std::unique_ptr<Connection> connection;  // null until needed, and after a failure
};

// A master and its replicas, which serve the same slots.
struct Shard {
  NodeAddress master;
  std::vector<NodeAddress> replicas;
};

struct Cluster::SlotMap {
  std::vector<Shard> shards;
  std::array<int16_t, kSlots> shard_of;  // index into shards; -1: no owner known
  uint64_t epoch = 0;                    // grows with every change of the map

  SlotMap() { shard_of.fill(-1); }

  // The index of the shard whose master is `master`, added when missing.
  int16_t shard_of_master(const NodeAddress& master) {
    for (size_t i = 0; i < shards.size(); ++i) {
      if (shards[i].master == master) return static_cast<int16_t>(i);
    }
    shards.push_back({master, {}});
    return static_cast<int16_t>(shards.size() - 1);
  }
};

// One command's state across the rounds of a call.
struct Cluster::Pending {
  const Command* command = nullptr;
  int slot = 0;
  std::optional<NodeAddress> ask;  // set by ASK: the next try goes there, after ASKING
  bool master_only = false;        // after a failure: no replica for this one
  int attempts = 0;
  NodeAddress last_node;
  std::string last_error;
};

// One call of run(): its commands' states, and what its latest round found.
struct Cluster::Round {
  std::vector<Pending> pending;
  std::vector<Reply> replies;
  std::vector<size_t> todo;                        // indices into pending for this round
  std::vector<size_t> retry;                       // ... for the next
  std::vector<std::pair<int, NodeAddress>> moved;  // (slot, owner) of MOVED replies
  std::shared_ptr<const SlotMap> map;
  bool refresh = false;  // the slot map looks stale
  bool wait = false;     // a transient failure: back off before retrying
};

namespace {

ClusterOptions with_readonly_connections(ClusterOptions options) {
  options.connection.readonly = options.read_from_replicas;
  return options;
}

// One node of a CLUSTER SLOTS entry: [host, port, id, ...]. An empty host
// means the host of the node that answered.
NodeAddress slots_node(const redisReply& node, const NodeAddress& from) {
  KVRAG_CHECK(node.type == REDIS_REPLY_ARRAY && node.elements >= 2 &&
                  node.element[0]->type == REDIS_REPLY_STRING &&
                  node.element[1]->type == REDIS_REPLY_INTEGER,
              kFormat, "redis ", from.name(), ": malformed node in CLUSTER SLOTS");
  const std::string_view host(node.element[0]->str, node.element[0]->len);
  return {host.empty() || host == "?" ? from.host : std::string(host),
          static_cast<int>(node.element[1]->integer)};
}

}  // namespace

Cluster::Cluster(ClusterOptions options) : options_(with_readonly_connections(std::move(options))) {
  KVRAG_CHECK(!options_.seeds.empty(), kInvalidArgument, "a redis cluster needs seed nodes");
  std::string errors;
  for (const NodeAddress& seed : options_.seeds) {
    std::string why;
    if (auto map = read_slot_map(seed, why)) {
      map_ = std::make_shared<const SlotMap>(std::move(*map));
      return;
    }
    errors += str_cat(errors.empty() ? "" : "; ", why);
  }
  KVRAG_THROW(kUnavailable, "redis cluster: no seed node gave a slot map: ", errors);
}

Cluster::~Cluster() = default;

std::shared_ptr<const Cluster::SlotMap> Cluster::slot_map() const {
  const std::lock_guard lock(map_mutex_);
  return map_;
}

std::shared_ptr<Cluster::Node> Cluster::node(const NodeAddress& address) {
  const std::lock_guard lock(nodes_mutex_);
  auto& node = nodes_[address];
  if (!node) node = std::make_shared<Node>(address);
  return node;
}

std::vector<Reply> Cluster::run(std::span<const Command> commands) {
  Round round;
  round.pending.resize(commands.size());
  round.replies.resize(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    round.pending[i].command = &commands[i];
    round.pending[i].slot = key_slot(commands[i].key);
    round.todo.push_back(i);
  }
  const auto start = steady_clock::now();
  for (int attempt = 0; !round.todo.empty(); ++attempt) {
    round.map = slot_map();
    run_round(round);
    if (round.retry.empty()) break;
    const milliseconds pause = round.wait ? backoff(attempt) : milliseconds(0);
    if (steady_clock::now() + pause - start >= options_.deadline) give_up(round, start);
    if (round.refresh) refresh_slot_map(round.map->epoch);
    // After the refresh: a MOVED names the owner as the owner itself sees
    // it, fresher than what another node may have answered the refresh.
    for (const auto& [slot, owner] : round.moved) note_moved(slot, owner);
    std::this_thread::sleep_for(pause);
    round.todo = std::exchange(round.retry, {});
    round.moved.clear();
    round.refresh = round.wait = false;
  }
  return std::move(round.replies);
}

void Cluster::give_up(const Round& round, steady_clock::time_point start) const {
  const Pending& first = round.pending[round.retry.front()];
  const auto spent = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  KVRAG_THROW(
      kUnavailable, "redis cluster: gave up on key '", first.command->key, "' (slot ", first.slot,
      ") at ", first.last_node.host.empty() ? "no node" : first.last_node.name(), " after ",
      first.attempts, " attempts in ", spent.count(), " ms: ", first.last_error,
      round.retry.size() > 1 ? str_cat(" (and ", round.retry.size() - 1, " more commands)") : "");
}

std::optional<NodeAddress> Cluster::route(const Pending& pending, const SlotMap& map) const {
  if (pending.ask) return pending.ask;
  const int16_t shard = map.shard_of[pending.slot];
  if (shard < 0) return std::nullopt;
  const Shard& owner = map.shards[shard];
  if (options_.read_from_replicas && pending.command->read_only && !pending.master_only &&
      !owner.replicas.empty()) {
    // Spread by slot, so that every replica takes a share.
    return owner.replicas[pending.slot % owner.replicas.size()];
  }
  return owner.master;
}

void Cluster::run_round(Round& round) {
  std::map<NodeAddress, std::vector<size_t>> groups;
  for (const size_t i : round.todo) {
    if (const auto address = route(round.pending[i], *round.map)) {
      groups[*address].push_back(i);
    } else {
      fail(round, i, {}, "no node serves this slot");
    }
  }
  // Nodes are locked in address order (the map's), so that two calls
  // never each hold a node the other waits for.
  std::vector<std::shared_ptr<Node>> nodes;
  std::vector<std::unique_lock<std::mutex>> locks;
  for (const auto& [address, group] : groups) {
    nodes.push_back(node(address));
    locks.emplace_back(nodes.back()->mutex);
  }
  size_t n = 0;
  for (const auto& [address, group] : groups) send_group(*nodes[n++], round, group);
  n = 0;
  for (const auto& [address, group] : groups) read_group(*nodes[n++], round, group);
}

void Cluster::send_group(Node& node, Round& round, std::span<const size_t> group) {
  try {
    if (!node.connection) {
      node.connection = std::make_unique<Connection>(node.address, options_.connection);
    }
    for (const size_t i : group) {
      if (round.pending[i].ask) node.connection->append(kAsking);
      node.connection->append(round.pending[i].command->args);
    }
    node.connection->flush();
  } catch (const Error& e) {
    node.connection.reset();  // read_group sees that the group failed
    for (const size_t i : group) fail(round, i, node.address, e.what());
  }
}

void Cluster::read_group(Node& node, Round& round, std::span<const size_t> group) {
  if (!node.connection) return;
  size_t read = 0;
  try {
    for (; read < group.size(); ++read) {
      const size_t i = group[read];
      // ASKING's own reply is OK; a refusal shows in the command's reply.
      if (round.pending[i].ask) node.connection->read();
      settle(round, i, node.address, node.connection->read());
    }
  } catch (const Error& e) {
    node.connection.reset();
    for (; read < group.size(); ++read) fail(round, group[read], node.address, e.what());
  }
}

void Cluster::settle(Round& round, size_t index, const NodeAddress& node, Reply reply) {
  Pending& pending = round.pending[index];
  pending.ask.reset();
  ++pending.attempts;
  pending.last_node = node;
  const auto error = error_text(*reply);
  if (!error) {
    round.replies[index] = std::move(reply);
    return;
  }
  const std::string_view code = error->substr(0, error->find(' '));
  if (code == "MOVED" || code == "ASK") {
    auto [slot, owner] = parse_redirect(*error);
    if (code == "MOVED") {
      round.moved.emplace_back(slot, owner);
      round.refresh = true;
    } else {
      pending.ask = std::move(owner);
    }
    // A redirection is followed at once, but one that keeps coming back
    // (a map still settling) backs off like a failure.
    round.wait = round.wait || pending.attempts > 2;
  } else if (is_transient(code)) {
    round.refresh = round.refresh || code != "LOADING";
    round.wait = true;
  } else {
    round.replies[index] = std::move(reply);  // the command's own error, for the caller
    return;
  }
  pending.last_error = *error;
  round.retry.push_back(index);
}

void Cluster::fail(Round& round, size_t index, const NodeAddress& node, std::string why) {
  Pending& pending = round.pending[index];
  pending.ask.reset();
  pending.master_only = true;
  ++pending.attempts;
  pending.last_node = node;
  pending.last_error = std::move(why);
  round.refresh = round.wait = true;
  round.retry.push_back(index);
}

std::vector<NodeAddress> Cluster::masters() const {
  const auto map = slot_map();
  std::vector<bool> serves(map->shards.size());
  for (const int16_t shard : map->shard_of) {
    if (shard >= 0) serves[shard] = true;
  }
  std::vector<NodeAddress> masters;
  for (size_t i = 0; i < serves.size(); ++i) {
    if (serves[i]) masters.push_back(map->shards[i].master);
  }
  return masters;
}

Reply Cluster::run_on(const NodeAddress& address, std::span<const std::string_view> args) {
  const std::shared_ptr<Node> n = node(address);
  const std::lock_guard lock(n->mutex);
  try {
    if (!n->connection) n->connection = std::make_unique<Connection>(address, options_.connection);
    return n->connection->command(args);
  } catch (const Error&) {
    n->connection.reset();
    throw;
  }
}

void Cluster::refresh_slot_map(uint64_t seen_epoch) {
  const std::lock_guard lock(refresh_mutex_);
  if (slot_map()->epoch != seen_epoch) return;  // another call refreshed it meanwhile
  for (const NodeAddress& from : known_nodes()) {
    std::string why;
    if (auto map = read_slot_map(from, why)) {
      const std::lock_guard map_lock(map_mutex_);
      map->epoch = map_->epoch + 1;
      map_ = std::make_shared<const SlotMap>(std::move(*map));
      return;
    }
  }
  // No node answered: the map stays, and the caller's retries and deadline
  // decide.
}

std::optional<Cluster::SlotMap> Cluster::read_slot_map(const NodeAddress& from, std::string& why) {
  try {
    const Reply reply = run_on(from, kClusterSlots);
    if (const auto error = error_text(*reply)) {
      why = str_cat("redis ", from.name(), ": CLUSTER SLOTS: ", *error);
      return std::nullopt;
    }
    KVRAG_CHECK(reply->type == REDIS_REPLY_ARRAY, kFormat, "redis ", from.name(),
                ": CLUSTER SLOTS did not answer an array");
    SlotMap map;
    for (size_t r = 0; r < reply->elements; ++r) {
      const redisReply& range = *reply->element[r];
      KVRAG_CHECK(range.type == REDIS_REPLY_ARRAY && range.elements >= 3 &&
                      range.element[0]->type == REDIS_REPLY_INTEGER &&
                      range.element[1]->type == REDIS_REPLY_INTEGER &&
                      range.element[0]->integer >= 0 &&
                      range.element[0]->integer <= range.element[1]->integer &&
                      range.element[1]->integer < kSlots,
                  kFormat, "redis ", from.name(), ": malformed slot range in CLUSTER SLOTS");
      const int16_t shard = map.shard_of_master(slots_node(*range.element[2], from));
      for (size_t e = 3; e < range.elements; ++e) {
        const NodeAddress replica = slots_node(*range.element[e], from);
        auto& replicas = map.shards[shard].replicas;
        if (std::find(replicas.begin(), replicas.end(), replica) == replicas.end()) {
          replicas.push_back(replica);
        }
      }
      std::fill(map.shard_of.begin() + range.element[0]->integer,
                map.shard_of.begin() + range.element[1]->integer + 1, shard);
    }
    if (map.shards.empty()) {
      why = str_cat("redis ", from.name(), ": no slots are assigned (is the cluster created?)");
      return std::nullopt;
    }
    return map;
  } catch (const Error& e) {
    why = e.what();
    return std::nullopt;
  }
}

void Cluster::note_moved(int slot, const NodeAddress& owner) {
  const std::lock_guard lock(map_mutex_);
  SlotMap map = *map_;
  map.shard_of[slot] = map.shard_of_master(owner);
  ++map.epoch;
  map_ = std::make_shared<const SlotMap>(std::move(map));
}

std::vector<NodeAddress> Cluster::known_nodes() const {
  const auto map = slot_map();
  std::vector<NodeAddress> nodes;
  const auto add = [&](const NodeAddress& address) {
    if (std::find(nodes.begin(), nodes.end(), address) == nodes.end()) nodes.push_back(address);
  };
  for (const Shard& shard : map->shards) add(shard.master);
  for (const Shard& shard : map->shards) {
    for (const NodeAddress& replica : shard.replicas) add(replica);
  }
  for (const NodeAddress& seed : options_.seeds) add(seed);
  return nodes;
}

}  // namespace kvrag::redis
