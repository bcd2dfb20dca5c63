#include "controller/cli/app.h"

#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/cli/args.h"
#include "controller/cli/cluster.h"
#include "controller/cli/commands.h"
#include "controller/cli/completion.h"
#include "controller/cli/dashboard.h"
#include "controller/cli/resolve.h"
#include "controller/cli/tree.h"
#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"

namespace rollgate::cli {
namespace {

void Write(std::FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

// SIGINT and SIGTERM cancel `stop` (blocked here and waited for by a thread of their own, so that
// the watch ends cleanly). Call before any other thread starts.
void CancelOnSignals(CancelToken& stop) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals, &stop] {
    int sig = 0;
    sigwait(&signals, &sig);
    stop.Cancel();
  }).detach();
}

// The terminal's width from $COLUMNS: a positive number, else 0 (unknown).
int ColumnsFromEnv(const char* v) {
  if (v == nullptr) return 0;
  const std::string s(v);
  int n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() && n > 0 ? n : 0;
}

}  // namespace

int Main(int argc, const char* const* argv) {
  std::vector<std::string> args(argv, argv + argc);
  // kubectl_complete-rollgate WORDS..., rollgate __complete WORDS...: the candidates and cobra's
  // directive line (kubectl's plugin completion; the scripts of `completion bash|zsh`).
  if (const auto words = CompletionWords(args)) {
    Write(stdout, CompletionAnswer(*words));
    return 0;
  }
  auto parsed = ParseArgs(args);
  const std::string program = ProgramName(args.empty() ? "rollgate" : args[0]);
  if (!parsed.ok()) {
    Write(stderr,
          "error: " + parsed.status().message() + "\nSee '" + program + " --help' for usage.\n");
    return 2;
  }
  const Options& o = *parsed;
  switch (o.verb) {
    case Verb::kHelp:
      Write(stdout, UsageText(program));
      return 0;
    case Verb::kVersion:
      Write(stdout, std::string("rollgate ") + ROLLGATE_VERSION + "\n");
      return 0;
    case Verb::kCompletion:
      Write(stdout, CompletionScript(o.name));
      return 0;
    case Verb::kResolve:
      return Resolve(o.name, o.resolve);
    case Verb::kList:
    case Verb::kGet:
    case Verb::kHistory:
    case Verb::kDiff:
    case Verb::kPromote:
    case Verb::kAbort:
    case Verb::kRetry:
    case Verb::kDashboard:
    case Verb::kClusterKubeconfig:
      break;
  }

  // Process-wide: lives until exit, as the signal thread refers to it.
  static CancelToken stop;
  if (o.watch || o.verb == Verb::kDashboard) CancelOnSignals(stop);
  auto getenv = [](const std::string& n) -> std::optional<std::string> {
    const char* v = std::getenv(n.c_str());  // NOLINT(concurrency-mt-unsafe): read before threads
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  auto cfg = kube::LoadDefault(o.kubeconfig, o.context, getenv);
  // A kubeconfig or context that cannot be used fails the command (1, as kubectl); 2 is kept for
  // a wrong command line.
  if (!cfg.ok()) {
    Write(stderr, "error: " + cfg.status().message() + "\n");
    return 1;
  }
  const std::string ns = !o.namespace_.empty()     ? o.namespace_
                         : cfg->namespace_.empty() ? "default"
                                                   : cfg->namespace_;
  static const RealClock clock;
  kube::RestClientOptions ropts;
  ropts.cancel = &stop;
  auto client = kube::RestClient::FromConfig(*cfg, clock, ropts);
  if (!client.ok()) {
    Write(stderr, "error: " + client.status().message() + "\n");
    return 1;
  }
  Io io;
  io.out = [](const std::string& s) { Write(stdout, s); };
  io.err = [](const std::string& s) { Write(stderr, s); };
  io.tty = isatty(STDOUT_FILENO) == 1;
  io.color = UseColor(io.tty, std::getenv("NO_COLOR"));  // NOLINT(concurrency-mt-unsafe)
  // The width the watch cuts its lines to on a terminal: stdout's window size, asked per frame
  // (a resize counts), else $COLUMNS, else unknown (nothing is cut).
  io.columns = [env = ColumnsFromEnv(std::getenv("COLUMNS"))] {  // NOLINT(concurrency-mt-unsafe)
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return int{ws.ws_col};
    return env;
  };
  io.now = [] { return clock.WallNow(); };
  switch (o.verb) {
    case Verb::kList:
      return List(**client, o, o.all_namespaces ? "" : ns, io);
    case Verb::kGet:
      if (o.name.empty()) return List(**client, o, o.all_namespaces ? "" : ns, io);
      if (o.watch) return Watch(**client, o, ns, io, stop);
      return Get(**client, o, ns, io);
    case Verb::kHistory:
      return History(**client, o, ns, io);
    case Verb::kDiff:
      return Diff(**client, o, ns, io);
    case Verb::kPromote:
    case Verb::kAbort:
    case Verb::kRetry:
      return Annotate(**client, o, ns, io);
    case Verb::kDashboard:
      return RunDashboard(**client, o, o.all_namespaces ? "" : ns, io, stop);
    case Verb::kClusterKubeconfig:
      return ClusterKubeconfig(**client, o, ns, *cfg, io);
    case Verb::kHelp:
    case Verb::kVersion:
    case Verb::kCompletion:
    case Verb::kResolve:
      break;
  }
  return 2;
}

}  // namespace rollgate::cli
