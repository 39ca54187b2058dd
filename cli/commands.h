// The subcommands of the kvrag executable. Each *_command.cpp registers its
// command with a static RegisterCommand, so adding a command touches no
// shared file. A command takes its arguments after the subcommand name and
// returns the process exit code; errors are thrown as kvrag::Error and
// reported by main.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kvrag::cli {

struct Command {
  std::function<int(const std::vector<std::string>&)> run;
  const char* usage;    // printed by `kvrag NAME --help` and after a usage error
  const char* summary;  // one line for `kvrag --help`
};

// Every registered command by name.
std::map<std::string, Command>& command_table();

struct RegisterCommand {
  RegisterCommand(const std::string& name, Command command) {
    command_table().emplace(name, std::move(command));
  }
};

}  // namespace kvrag::cli
