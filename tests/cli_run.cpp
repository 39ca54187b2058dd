#include "tests/cli_run.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

extern char** environ;

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

KvragProcess::KvragProcess(const std::vector<std::string>& args) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, tmp_.file("out").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, tmp_.file("err").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_text = {KVRAG_CLI_PATH};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, KVRAG_CLI_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << KVRAG_CLI_PATH;
  if (rc != 0) pid_ = -1;
}

KvragProcess::~KvragProcess() {
  if (pid_ <= 0) return;
  // Not once it is reaped: its pid may belong to another process by now.
  if (!finished_) kill(pid_, SIGKILL);
  wait();
}

bool KvragProcess::running() {
  if (pid_ <= 0 || finished_) return false;
  int status = 0;
  const pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    status_ = status;
    finished_ = true;
  }
  return done == 0;
}

CliRun KvragProcess::wait(int* signal) {
  if (pid_ > 0 && !finished_) {
    while (waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    finished_ = true;
  }
  pid_ = -1;
  CliRun run;
  if (WIFEXITED(status_)) run.exit_code = WEXITSTATUS(status_);
  if (signal) *signal = WIFSIGNALED(status_) ? WTERMSIG(status_) : 0;
  run.out = read_text(tmp_.file("out"));
  run.err = read_text(tmp_.file("err"));
  return run;
}

}  // namespace kvrag::testing
