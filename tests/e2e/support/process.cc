#include "tests/e2e/support/process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

#include "tests/e2e/support/log_reader.h"

namespace rollgate::e2e {
namespace {

// strerror, thread-safely.
std::string ErrnoText(int error) { return std::generic_category().message(error); }

// strsignal, thread-safely: the same text for every signal (glibc's, untranslated).
std::string SignalText(int sig) {
  if (const char* description = ::sigdescr_np(sig)) return description;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    return "Real-time signal " + std::to_string(sig - SIGRTMIN);
  }
  return "Unknown signal " + std::to_string(sig);
}

}  // namespace

ChildProcess::~ChildProcess() {
  if (Running()) {
    Signal(SIGKILL);
    (void)Wait(std::chrono::seconds(10));
  }
}

std::string ChildProcess::Start(const std::vector<std::string>& argv, const std::string& log_path) {
  if (Running()) return "already running (pid " + std::to_string(pid_) + ")";
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return "open " + log_path + ": " + ErrnoText(errno);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    return "fork: " + ErrnoText(errno);
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the parent has threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
    ::close_range(3, ~0U, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  pid_ = pid;
  exited_ = false;
  wait_status_ = 0;
  return "";
}

bool ChildProcess::Running() {
  if (pid_ <= 0 || exited_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    wait_status_ = st;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) const {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (pid_ <= 0) return std::nullopt;
  return wait_status_;
}

std::string ChildProcess::Describe(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return "signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
           SignalText(WTERMSIG(wait_status)) + ")";
  }
  return "wait status " + std::to_string(wait_status);
}

int RunCommand(const std::vector<std::string>& argv, std::string& output,
               std::chrono::milliseconds timeout) {
  output.clear();
  char path[] = "/tmp/rollgate-e2e-cmd.XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return -1;
  ::close(fd);
  ChildProcess p;
  if (std::string err = p.Start(argv, path); !err.empty()) {
    output = err;
    ::unlink(path);
    return -1;
  }
  const std::optional<int> st = p.Wait(timeout);
  output = ReadFile(path);
  ::unlink(path);
  if (!st) return -1;
  return WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
}

}  // namespace rollgate::e2e
