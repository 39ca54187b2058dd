#include "tests/cli_run.h"

#include <sys/wait.h>

#include <cstdlib>

#include "tests/model_files.h"

namespace kvrag::testing {
namespace {

// `arg` quoted for /bin/sh.
std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (const char ch : arg) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

}  // namespace

CliRun run_kvrag(const std::vector<std::string>& args) {
  const TempDir tmp("kvrag_test_cli_run");
  std::string command = shell_quote(KVRAG_CLI_PATH);
  // append, not " " + string: GCC 12 warns falsely (-Wrestrict) on the latter.
  for (const std::string& arg : args) command.append(" ").append(shell_quote(arg));
  command.append(" >").append(shell_quote(tmp.file("out")));
  command.append(" 2>").append(shell_quote(tmp.file("err")));
  const int status = std::system(command.c_str());
  CliRun run;
  if (status != -1 && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  run.out = read_text(tmp.file("out"));
  run.err = read_text(tmp.file("err"));
  return run;
}

std::string describe(const CliRun& run) {
  std::string text = "exit ";
  text.append(std::to_string(run.exit_code)).append("\nstdout: ").append(run.out);
  text.append("\nstderr: ").append(run.err);
  return text;
}

}  // namespace kvrag::testing
