// The kvrag command: dispatches to a subcommand and turns errors into a
// message on stderr and a non-zero exit code.
#include <cstring>
#include <functional>
#include <iostream>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/heap.h"

namespace {

const std::map<std::string, kvrag::cli::Command>& commands() { return kvrag::cli::command_table(); }

void print_help() {
  std::cout << "kvrag: retrieval-augmented generation over cached cross-attention K/V\n\n"
               "usage: kvrag COMMAND [options]\n\ncommands:\n";
  for (const auto& [name, command] : commands()) {
    std::cout << "  " << name << std::string(12 - name.size(), ' ') << command.summary << "\n";
  }
  std::cout
      << "\n`kvrag COMMAND --help` shows a command's options. --index PATH|URI: an index\n"
         "folder, or postgresql://user@host:port,.../db?schema=NAME[&blobs=redis://host:port,...]\n"
         "(an index shared by several processes; README, \"Outgrowing one machine\").\n";
}

// Exit codes: 2 for bad usage or input, 3 for a missing file or record, 1 otherwise.
int exit_code(kvrag::ErrorKind kind) {
  switch (kind) {
    case kvrag::ErrorKind::kInvalidArgument:
      return 2;
    case kvrag::ErrorKind::kNotFound:
      return 3;
    default:
      return 1;
  }
}

}  // namespace

namespace kvrag::cli {
std::map<std::string, Command>& command_table() {
  // A function-local static: registrations run during static initialisation
  // of other files, in unspecified order.
  static std::map<std::string, Command> table;
  return table;
}
}  // namespace kvrag::cli

int main(int argc, char** argv) {
  kvrag::keep_freed_blocks_in_heap();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  const auto it = commands().find(argv[1]);
  if (it == commands().end()) {
    std::cerr << "kvrag: unknown command '" << argv[1] << "'\n";
    print_help();
    return 2;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::cout << it->second.usage;
      return 0;
    }
  }
  try {
    return it->second.run(args);
  } catch (const kvrag::Error& e) {
    std::cerr << "kvrag " << argv[1] << ": error: " << e.what() << "\n";
    // Usage only for usage errors: after "the index was built with another
    // model" it would suggest the arguments were malformed.
    if (dynamic_cast<const kvrag::cli::UsageError*>(&e) != nullptr) std::cerr << it->second.usage;
    return exit_code(e.kind());
  } catch (const std::exception& e) {
    std::cerr << "kvrag " << argv[1] << ": error: " << e.what() << "\n";
    return 1;
  }
}
