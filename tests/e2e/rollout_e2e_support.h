// Support for the rollout end-to-end tests (rollout_e2e_test.cc): a child process (the real
// rollgate-controller binary, run so that it can be SIGKILLed and restarted), running a command to
// completion, and small accessors for the JSON objects the API server returns.
// Thread-safety: ChildProcess is used by one thread; the free functions are reentrant.
#pragma once

#include <cpprest/json.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace rollgate::e2e {

using Json = web::json::value;

// A child process started with fork/execv, stdin from /dev/null, stdout and stderr appended to a
// log file. The child gets SIGKILL when the test process dies (PR_SET_PDEATHSIG) and when the
// ChildProcess is destroyed while it still runs, so no controller outlives its test.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() {
    if (Running()) {
      Signal(SIGKILL);
      (void)Wait(std::chrono::seconds(10));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (a path) with the test's environment. Returns "" or what went wrong.
  std::string Start(const std::vector<std::string>& argv, const std::string& log_path) {
    if (Running()) return "already running (pid " + std::to_string(pid_) + ")";
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return "open " + log_path + ": " + std::strerror(errno);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fd);
      return std::string("fork: ") + std::strerror(errno);
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

  pid_t pid() const { return pid_; }

  // True while started and not yet reaped (a zombie is reaped here).
  bool Running() {
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

  void Signal(int sig) const {
    if (pid_ > 0 && !exited_) ::kill(pid_, sig);
  }

  // Waits for the process to end; its wait status, or nullopt when it still runs after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Running()) {
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (pid_ <= 0) return std::nullopt;
    return wait_status_;
  }

  // "exit code 0", "signal 9 (Killed)".
  static std::string Describe(int wait_status) {
    if (WIFEXITED(wait_status)) return "exit code " + std::to_string(WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status)) {
      return "signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
             ::strsignal(WTERMSIG(wait_status)) + ")";
    }
    return "wait status " + std::to_string(wait_status);
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int wait_status_ = 0;
};

// Runs argv to completion; returns its exit code (-1 when it could not run) and sets `output` to
// its stdout and stderr together.
inline int RunCommand(const std::vector<std::string>& argv, std::string& output) {
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
  const std::optional<int> st = p.Wait(std::chrono::minutes(2));
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  output = ss.str();
  ::unlink(path);
  if (!st) return -1;
  return WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
}

// ---- JSON accessors ----------------------------------------------------------------------------

// The value at a dotted path ("status.environments.0.phase": object fields and array indexes), or
// nullptr when any step is missing or null.
inline const Json* At(const Json& j, std::string_view path) {
  const Json* cur = &j;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string part(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (cur->is_object()) {
      if (!cur->has_field(part)) return nullptr;
      cur = &cur->at(part);
    } else if (cur->is_array()) {
      char* end = nullptr;
      const unsigned long i = std::strtoul(part.c_str(), &end, 10);
      if (part.empty() || *end != '\0' || i >= cur->size()) return nullptr;
      cur = &cur->at(i);
    } else {
      return nullptr;
    }
    if (cur->is_null()) return nullptr;
  }
  return cur;
}

inline std::string Str(const Json& j, std::string_view path) {
  const Json* v = At(j, path);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

inline std::int64_t Int(const Json& j, std::string_view path, std::int64_t def = -1) {
  const Json* v = At(j, path);
  return v != nullptr && v->is_integer() ? v->as_number().to_int64() : def;
}

inline std::map<std::string, std::string> StrMap(const Json& j, std::string_view path) {
  std::map<std::string, std::string> out;
  const Json* v = At(j, path);
  if (v == nullptr || !v->is_object()) return out;
  for (const auto& [k, val] : v->as_object()) {
    if (val.is_string()) out[k] = val.as_string();
  }
  return out;
}

// The element of the array at `path` whose `key` field equals `value`, or nullptr.
inline const Json* Find(const Json& j, std::string_view path, const char* key,
                        const std::string& value) {
  const Json* arr = At(j, path);
  if (arr == nullptr || !arr->is_array()) return nullptr;
  for (const auto& e : arr->as_array()) {
    if (Str(e, key) == value) return &e;
  }
  return nullptr;
}

inline Json Obj(std::initializer_list<std::pair<std::string, Json>> fields) {
  Json o = Json::object();
  for (const auto& [k, v] : fields) o[k] = v;
  return o;
}

inline Json S(const std::string& s) { return Json::string(s); }

inline Json StrObj(const std::map<std::string, std::string>& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = Json::string(v);
  return o;
}

inline std::string Render(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) out += (out.size() > 1 ? ", " : "") + k + ": " + v;
  return out + "}";
}

}  // namespace rollgate::e2e
