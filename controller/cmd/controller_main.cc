// rollgate-controller: loads the API connection settings, builds the client and runs the
// controller's informers until SIGINT/SIGTERM. Bad flags or an unusable kubeconfig exit with
// code 2 and one line naming the file and the field.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/common/flags.h"
#include "controller/common/log.h"
#include "controller/kube/event_recorder.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/leader_election.h"
#include "controller/kube/rest_client.h"
#include "controller/metrics/bind_address.h"
#include "controller/metrics/health_server.h"
#include "controller/metrics/heartbeat.h"
#include "controller/metrics/metrics.h"
#include "controller/metrics/metrics_server.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/controller.h"
#include "controller/rollout/image_ref.h"

namespace {

using namespace rollgate;  // NOLINT(google-build-using-namespace): a main

struct Options {
  std::string kubeconfig;
  std::string context;
  std::string watch_namespace;
  double kube_qps = 20;
  int kube_burst = 30;
  int concurrency = 4;
  std::vector<std::string> allowed_registries;
  bool dry_run = false;
  std::string validator_image =
      std::string("ghcr.io/rollgate/rollgate-validate:") + ROLLGATE_VERSION;
  std::string gpu_resource = "nvidia.com/gpu";
  bool leader_elect = false;
  std::string leader_election_namespace;
  std::string leader_election_id = "rollgate-controller";
  double lease_duration_s = 15;
  double renew_deadline_s = 10;
  double retry_period_s = 2;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string metrics_bind = ":8080";
  std::string health_bind = ":8081";
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
  fs.Int("concurrency", &o.concurrency, "rollouts reconciled in parallel");
  fs.List("allowed-registries", &o.allowed_registries,
          "registries (host[:port][/path] or *.domain) images may come from; empty: any");
  fs.Bool("dry-run", &o.dry_run, "plan and report, but patch and write nothing");
  fs.String("validator-image", &o.validator_image,
            "image of rollgate-validate, injected into GPU workers that require CUDA validation");
  fs.String("gpu-resource", &o.gpu_resource, "extended resource that marks a GPU container");
  fs.Bool("leader-elect", &o.leader_elect,
          "elect a leader on a Lease; only the leader reconciles (run several replicas)");
  fs.String("leader-election-namespace", &o.leader_election_namespace,
            "namespace of the Lease (default: the controller's own namespace)");
  fs.String("leader-election-id", &o.leader_election_id, "name of the Lease");
  fs.Double("leader-election-lease-duration", &o.lease_duration_s, "seconds");
  fs.Double("leader-election-renew-deadline", &o.renew_deadline_s, "seconds");
  fs.Double("leader-election-retry-period", &o.retry_period_s, "seconds");
  fs.String("log-level", &o.log_level, "debug, info, warning or error");
  fs.String("log-format", &o.log_format, "text or json");
  fs.String("metrics-bind-address", &o.metrics_bind,
            R"(address of /metrics (":8080", "127.0.0.1:8080", "0" disables it))");
  fs.String("health-probe-bind-address", &o.health_bind,
            "address of /healthz and /readyz (\"0\" disables them)");
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
  if (o.log_format == "json") {
    log::SetFormat(log::OutputFormat::kJson);
  } else if (o.log_format != "text") {
    return Fail("invalid value \"" + o.log_format + "\" for flag --log-format: want text or json");
  }
  if (o.kube_qps < 0 || o.kube_burst < 1) return Fail("--kube-qps must be >= 0, --kube-burst >= 1");
  if (o.concurrency < 1 || o.concurrency > 64) return Fail("--concurrency must be in [1, 64]");
  if (Status st = rollout::ValidateAllowedRegistries(o.allowed_registries); !st.ok()) {
    return Fail("--allowed-registries: " + st.message());
  }

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
  // Every check that can fail happens before the first thread starts.
  for (const auto* bind : {&o.metrics_bind, &o.health_bind}) {
    if (auto parsed = metrics::ParseBindAddress(*bind); !parsed.ok()) {
      return Fail(parsed.status().message());
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  kube::LeaderElectionOptions lo;
  if (o.leader_elect) {
    lo.namespace_ =
        o.leader_election_namespace.empty() ? cfg->namespace_ : o.leader_election_namespace;
    if (lo.namespace_.empty()) lo.namespace_ = "default";
    lo.name = o.leader_election_id;
    lo.identity = std::string(host) + "_" + std::to_string(getpid());
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); };
    lo.lease_duration = ms(o.lease_duration_s);
    lo.renew_deadline = ms(o.renew_deadline_s);
    lo.retry_period = ms(o.retry_period_s);
    if (Status st = kube::ValidateLeaderElectionOptions(lo); !st.ok()) return Fail(st.message());
  }

  metrics::MetricsOptions mo;
  mo.initially_leader = !o.leader_elect;
  metrics::Metrics metrics(nullptr, mo);
  metrics::Heartbeat heartbeat(clock);
  CancelToken stop;  // SIGINT/SIGTERM or leadership lost; also cancels requests in flight
  kube::RestClientOptions ro;
  ro.cancel = &stop;
  ro.qps = o.kube_qps;
  ro.burst = o.kube_burst;
  ro.observe = [&metrics](const std::string& verb, int code, std::chrono::nanoseconds d) {
    metrics.ObserveKubeRequest(verb, code, d);
  };
  auto client = kube::RestClient::FromConfig(*cfg, clock, ro);
  if (!client.ok()) return Fail(cfg->source + ": " + client.status().message());
  // The elector's client is not cancelled by the stop signal: releasing the Lease on SIGTERM is
  // a request made after the stop.
  kube::RestClientOptions lease_ro = ro;
  lease_ro.cancel = nullptr;
  auto lease_client = kube::RestClient::FromConfig(*cfg, clock, lease_ro);
  if (!lease_client.ok()) return Fail(cfg->source + ": " + lease_client.status().message());

  kube::ApiEventRecorder events(**client, clock, "rollgate-controller", host);
  rollout::ControllerOptions co;
  co.watch_namespace = o.watch_namespace;
  co.concurrency = o.concurrency;
  co.reconciler.dry_run = o.dry_run;
  co.reconciler.planner.allowed_registries = o.allowed_registries;
  co.reconciler.planner.validator_image = o.validator_image;
  co.reconciler.planner.gpu_resource = o.gpu_resource;
  co.reconciler.metrics = &metrics;
  co.heartbeat = &heartbeat;
  co.on_watch_restart = [&metrics](const std::string& resource) {
    metrics.CountWatchRestart(resource);
  };
  co.prometheus_factory = [] { return rollout::NewPrometheusClient(std::chrono::seconds(10)); };

  // Leader election: the elector campaigns on its own thread; the controller's workers start
  // once it leads. Losing the lease stops everything (the process exits 1 and is restarted),
  // so no stale leader keeps acting.
  CancelToken became_leader;
  std::atomic<bool> lost_lease{false};
  std::unique_ptr<kube::LeaderElector> elector;
  if (o.leader_elect) {
    elector = std::make_unique<kube::LeaderElector>(
        **lease_client, clock, lo,
        kube::LeaderElector::Callbacks{[&] { became_leader.Cancel(); },
                                       [&] {
                                         lost_lease = true;
                                         stop.Cancel();
                                       },
                                       [&metrics](bool l) { metrics.SetLeader(l); }});
    co.wait_for_leadership = [&](const CancelToken& s) {
      while (!became_leader.cancelled() && !s.cancelled()) {
        (void)s.SleepFor(std::chrono::milliseconds(100));
      }
      return !s.cancelled();
    };
  }
  rollout::Controller controller(**client, clock, events, co);

  auto metrics_server = metrics::MetricsServer::Start(
      o.metrics_bind, metrics.registry(), [&] { metrics.SetQueueDepth(controller.QueueDepth()); });
  if (!metrics_server.ok()) return Fail(metrics_server.status().message());
  auto health_server = metrics::HealthServer::Start(
      o.health_bind, {[&] { return controller.HasSynced(); },
                      [&] { return heartbeat.Wedged(controller.QueueDepth()); }});
  if (!health_server.ok()) return Fail(health_server.status().message());

  log::Info("controller", "starting",
            {{"version", ROLLGATE_VERSION},
             {"config", cfg->source},
             {"server", cfg->server},
             {"namespace", o.watch_namespace.empty() ? "(all)" : o.watch_namespace},
             {"metrics", o.metrics_bind},
             {"health", o.health_bind},
             {"leader_election", o.leader_elect ? lo.namespace_ + "/" + lo.name : "off"}});

  // Waits for SIGINT/SIGTERM, polling so that it also ends when the controller stops by itself
  // (leadership lost) without anyone having to signal it.
  std::thread signal_thread([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!stop.cancelled()) {
      const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig > 0) {
        log::Info("controller", "stopping", {{"signal", std::to_string(sig)}});
        stop.Cancel();
      }
    }
  });
  std::thread elector_thread;
  if (elector) elector_thread = std::thread([&] { elector->Run(stop); });
  controller.Run(stop);
  if (elector_thread.joinable()) elector_thread.join();  // releases the lease on SIGTERM
  stop.Cancel();                                         // the controller may have ended on its own
  signal_thread.join();
  if (lost_lease) {
    log::Error("controller", "stopped: leadership lost");
    return 1;
  }
  log::Info("controller", "stopped");
  return 0;
}
