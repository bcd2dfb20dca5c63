#include "controller/cli/app.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/cli/args.h"
#include "controller/cli/commands.h"
#include "controller/cli/completion.h"
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

}  // namespace

int Main(int argc, const char* const* argv) {
  std::vector<std::string> args(argv, argv + argc);
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
    case Verb::kPromote:
    case Verb::kAbort:
    case Verb::kRetry:
      break;
  }

  // Process-wide: lives until exit, as the signal thread refers to it.
  static CancelToken stop;
  if (o.watch) CancelOnSignals(stop);
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
  io.now = [] { return clock.WallNow(); };
  switch (o.verb) {
    case Verb::kList:
      return List(**client, o, o.all_namespaces ? "" : ns, io);
    case Verb::kGet:
      if (o.name.empty()) return List(**client, o, o.all_namespaces ? "" : ns, io);
      if (o.watch) return Watch(**client, o, ns, io, stop);
      return Get(**client, o, ns, io);
    case Verb::kPromote:
    case Verb::kAbort:
    case Verb::kRetry:
      return Annotate(**client, o, ns, io);
    case Verb::kHelp:
    case Verb::kVersion:
    case Verb::kCompletion:
    case Verb::kResolve:
      break;
  }
  return 2;
}

}  // namespace rollgate::cli
