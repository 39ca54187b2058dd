// The subcommands of the kvrag executable. Each takes its arguments after
// the subcommand name and returns the process exit code; errors are thrown
// as kvrag::Error and reported by main.
#pragma once

#include <string>
#include <vector>

namespace kvrag::cli {

extern const char* kGenerateUsage;
int run_generate(const std::vector<std::string>& argv);

}  // namespace kvrag::cli
