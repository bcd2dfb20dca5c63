// Helpers shared by the CUDA probe's tests: where the fake driver and rollgate-validate are
// (compile definitions from tests/CMakeLists.txt), FAKE_CUDA_* settings scoped to one test, the
// fake's leak counter, running a process with its output captured, and temporary directories.
// Thread-safety: test-thread only (setenv/unsetenv are not thread-safe).
#pragma once

#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef ROLLGATE_FAKE_LIBCUDA
#error "ROLLGATE_FAKE_LIBCUDA (path of the fake libcuda.so.1) must be defined by the build"
#endif
#ifndef ROLLGATE_VALIDATE_BIN
#error "ROLLGATE_VALIDATE_BIN (path of rollgate-validate) must be defined by the build"
#endif

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace rollgate::validator::testing {

// Strings for the tests' concatenations. Constructed before main: a failure there ends the test
// binary, which is the right outcome.
// NOLINTBEGIN(cert-err58-cpp)
inline const std::string kFakeLibcuda = ROLLGATE_FAKE_LIBCUDA;
inline const std::string kValidateBin = ROLLGATE_VALIDATE_BIN;
// NOLINTEND(cert-err58-cpp)

inline std::string DirName(const std::string& path) { return path.substr(0, path.rfind('/')); }

// Sets environment variables for the lifetime of the object; restores the previous values.
// The environment functions are not thread-safe: only the test thread changes the environment,
// never while a probe thread of the test may read it.
// NOLINTBEGIN(concurrency-mt-unsafe)
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::string>& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
      setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    std::for_each(saved_.rbegin(), saved_.rend(), [](const auto& saved) {
      const auto& [name, old] = saved;
      if (old) {
        setenv(name.c_str(), old->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    });
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};
// NOLINTEND(concurrency-mt-unsafe)

// The fake's count of contexts, allocations and modules not released; -1 if it cannot be asked.
inline int FakeLiveObjects() {
  void* handle = dlopen(kFakeLibcuda.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return -1;
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(handle, "fake_cuda_live_objects"));
  int live = fn != nullptr ? fn() : -1;
  dlclose(handle);
  return live;
}

// A directory under the test temp dir, removed with its files at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "rollgate_validator_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcessResult {
  int exit_code = -1;  // -1: did not exit normally (killed by a signal, or by us after the limit)
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
};

// Runs `argv` (argv[0] is the executable's path) with the current environment changed by `env`
// (a value of nullopt removes the variable), stdout and stderr captured to files in `dir`. A
// process still running after `limit` is killed.
inline ProcessResult RunProcess(const std::vector<std::string>& argv,
                                const std::map<std::string, std::optional<std::string>>& env,
                                const TempDir& dir,
                                std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [name, value] : env) {
    if (value) {
      vars[name] = *value;
    } else {
      vars.erase(name);
    }
  }
  std::vector<std::string> env_strings;
  env_strings.reserve(vars.size());
  for (const auto& [name, value] : vars) env_strings.emplace_back(name).append("=").append(value);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  argp.reserve(args.size() + 1);
  for (std::string& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  const std::string out_path = dir.File("stdout");
  const std::string err_path = dir.File("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  ProcessResult result;
  auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.err = "posix_spawn failed: " + std::to_string(rc);
    return result;
  }
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() - start > limit) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

}  // namespace rollgate::validator::testing
