// rollgate-controller: loads the API connection settings, builds the client and runs the
// controller's informers until SIGINT/SIGTERM. Bad flags or an unusable kubeconfig exit with
// code 2 and one line naming the file and the field.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <thread>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/common/flags.h"
#include "controller/common/log.h"
#include "controller/kube/informer.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"

namespace {

using namespace rollgate;  // NOLINT(google-build-using-namespace): a main

struct Options {
  std::string kubeconfig;
  std::string context;
  std::string watch_namespace;
  double kube_qps = 20;
  int kube_burst = 30;
  std::string log_level = "info";
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "rollgate-controller: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  FlagSet fs("rollgate-controller");
  fs.String("kubeconfig", &o.kubeconfig,
            "path to a kubeconfig; default $KUBECONFIG, then in-cluster, then ~/.kube/config");
  fs.String("context", &o.context, "kubeconfig context to use (default: current-context)");
  fs.String("namespace", &o.watch_namespace, "watch only this namespace (default: all)");
  fs.Double("kube-qps", &o.kube_qps, "client-side limit of API requests per second");
  fs.Int("kube-burst", &o.kube_burst, "burst of API requests above --kube-qps");
  fs.String("log-level", &o.log_level, "debug, info, warning or error");
  bool help = false;
  if (Status st = fs.Parse(argc, argv, &help); !st.ok()) return Fail(st.message());
  if (help) {
    std::fputs(fs.Usage().c_str(), stdout);
    return 0;
  }
  if (o.log_level == "debug") {
    log::SetLevel(log::Level::kDebug);
  } else if (o.log_level == "warning") {
    log::SetLevel(log::Level::kWarning);
  } else if (o.log_level == "error") {
    log::SetLevel(log::Level::kError);
  } else if (o.log_level != "info") {
    return Fail("invalid value \"" + o.log_level + "\" for flag --log-level");
  }
  if (o.kube_qps < 0 || o.kube_burst < 1) return Fail("--kube-qps must be >= 0, --kube-burst >= 1");

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): start-up
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  auto cfg = kube::LoadDefault(o.kubeconfig, o.context, getenv);
  if (!cfg.ok()) return Fail(cfg.status().message());

  RealClock clock;
  kube::RestClientOptions ro;
  ro.qps = o.kube_qps;
  ro.burst = o.kube_burst;
  auto client = kube::RestClient::FromConfig(*cfg, clock, ro);
  if (!client.ok()) return Fail(cfg->source + ": " + client.status().message());
  log::Info("controller", "starting",
            {{"version", ROLLGATE_VERSION}, {"config", cfg->source}, {"server", cfg->server},
             {"namespace", o.watch_namespace.empty() ? "(all)" : o.watch_namespace}});

  CancelToken stop;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log::Info("controller", "stopping", {{"signal", std::to_string(sig)}});
    stop.Cancel();
  });

  kube::InformerOptions io;
  io.type = kube::resources::Deployments();
  io.namespace_ = o.watch_namespace;
  io.transform = [](kube::Json&& obj) {
    if (obj.has_field("metadata")) obj["metadata"].erase("managedFields");
    return std::move(obj);
  };
  kube::Informer deployments(**client, io);
  std::thread informer_thread([&] { deployments.Run(stop); });
  if (deployments.WaitForSync(stop, std::chrono::minutes(5))) {
    log::Info("controller", "caches synced",
              {{"deployments", std::to_string(deployments.Size())}});
  }
  informer_thread.join();
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  log::Info("controller", "stopped");
  return 0;
}
