// rollgate-controller: parses the flags (manager/options.h), builds the API clients, campaigns
// for leadership when asked, serves /metrics and the health probes, and runs the controller
// (manager/wiring.h) until SIGINT/SIGTERM or a lost lease. Bad flags or an unusable kubeconfig
// exit with code 2 and one line naming the flag, or the file and the field.
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/common/log.h"
#include "controller/kube/event_recorder.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/leader_election.h"
#include "controller/kube/rest_client.h"
#include "controller/manager/options.h"
#include "controller/manager/wiring.h"
#include "controller/metrics/health_server.h"
#include "controller/metrics/heartbeat.h"
#include "controller/metrics/metrics.h"
#include "controller/metrics/metrics_auth.h"
#include "controller/metrics/metrics_server.h"
#include "controller/metrics/server_tls.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/docker_config.h"
#include "controller/rollout/registry_client.h"

namespace {

using namespace rollgate;  // NOLINT(google-build-using-namespace): a main

int Fail(const std::string& msg) {
  std::fprintf(stderr, "rollgate-controller: %s\n", msg.c_str());
  return 2;
}

std::string Hostname() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// ---- client construction ----

struct Clients {
  kube::RestConfig config;
  std::unique_ptr<kube::RestClient> client;  // cancelled by the stop signal
  // The elector's client is not cancelled by the stop signal: releasing the Lease on SIGTERM is
  // a request made after the stop.
  std::unique_ptr<kube::RestClient> lease_client;
  // TokenReviews and SubjectAccessReviews of scrapers (--metrics-secure): a client of its own, so
  // that a flood of scrapes with made-up tokens never eats the reconcilers' or the Lease's rate
  // limit, and one that gives up quickly (it runs on the metrics server's thread).
  std::unique_ptr<kube::RestClient> auth_client;
  // Events: a side channel with a client and a rate limit of its own, so that they never take a
  // reconcile's tokens. Not cancelled by the stop signal: what is queued is sent at shutdown
  // (bounded by AsyncEventRecorder's flush timeout).
  std::unique_ptr<kube::RestClient> events_client;
};

Result<Clients> BuildClients(const manager::Options& o, const Clock& clock, CancelToken& stop,
                             metrics::Metrics& metrics) {
  auto getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): start-up
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  auto cfg = kube::LoadDefault(o.kubeconfig, o.context, getenv);
  if (!cfg.ok()) return cfg.status();
  kube::RestClientOptions ro;
  ro.cancel = &stop;
  ro.qps = o.kube_qps;
  ro.burst = o.kube_burst;
  ro.observe = [&metrics](const std::string& verb, int code, std::chrono::nanoseconds d) {
    metrics.ObserveKubeRequest(verb, code, d);
  };
  auto client = kube::RestClient::FromConfig(*cfg, clock, ro);
  if (!client.ok())
    return Status(client.status().code(), cfg->source + ": " + client.status().message());
  kube::RestClientOptions lease_ro = ro;
  lease_ro.cancel = nullptr;
  // One renewal (a GET and an UPDATE of the Lease) must end within the renew deadline even on a
  // frozen connection: each request gets a fifth of it, and no Retry-After waits.
  lease_ro.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      manager::Seconds(o.renew_deadline_s) / 5);
  lease_ro.max_retries = 0;
  auto lease_client = kube::RestClient::FromConfig(*cfg, clock, lease_ro);
  if (!lease_client.ok()) {
    return Status(lease_client.status().code(),
                  cfg->source + ": " + lease_client.status().message());
  }
  kube::RestClientOptions auth_ro = ro;
  auth_ro.request_timeout = std::chrono::seconds(3);
  auth_ro.max_retries = 0;
  auth_ro.qps = 5;
  auth_ro.burst = 10;
  auto auth_client = kube::RestClient::FromConfig(*cfg, clock, auth_ro);
  if (!auth_client.ok()) {
    return Status(auth_client.status().code(), cfg->source + ": " + auth_client.status().message());
  }
  kube::RestClientOptions events_ro = ro;
  events_ro.cancel = nullptr;
  events_ro.request_timeout = std::chrono::seconds(5);
  events_ro.max_retries = 1;
  events_ro.qps = o.kube_qps / 2;
  events_ro.burst = std::max(1, o.kube_burst / 2);
  auto events_client = kube::RestClient::FromConfig(*cfg, clock, events_ro);
  if (!events_client.ok()) {
    return Status(events_client.status().code(),
                  cfg->source + ": " + events_client.status().message());
  }
  return Clients{*cfg, std::move(client).value(), std::move(lease_client).value(),
                 std::move(auth_client).value(), std::move(events_client).value()};
}

// ---- leader election ----

Result<kube::LeaderElectionOptions> LeaseOptions(const manager::Options& o,
                                                 const kube::RestConfig& cfg) {
  kube::LeaderElectionOptions lo;
  lo.namespace_ =
      o.leader_election_namespace.empty() ? cfg.namespace_ : o.leader_election_namespace;
  if (lo.namespace_.empty()) lo.namespace_ = "default";
  lo.name = o.leader_election_id;
  lo.identity = Hostname() + "_" + std::to_string(getpid());
  lo.lease_duration = manager::Seconds(o.lease_duration_s);
  lo.renew_deadline = manager::Seconds(o.renew_deadline_s);
  lo.retry_period = manager::Seconds(o.retry_period_s);
  if (Status st = kube::ValidateLeaderElectionOptions(lo); !st.ok()) return st;
  return lo;
}

// The elector campaigns on its own thread; the controller's workers start once it leads. Losing
// the lease stops everything (the process exits 1 and is restarted), so no stale leader acts.
struct Election {
  CancelToken became_leader;
  std::atomic<bool> lost_lease{false};
  std::unique_ptr<kube::LeaderElector> elector;

  Election(kube::KubeClient& client, const Clock& clock, const kube::LeaderElectionOptions& lo,
           CancelToken& stop, metrics::Metrics& metrics)
      : elector(std::make_unique<kube::LeaderElector>(
            client, clock, lo,
            kube::LeaderElector::Callbacks{[this] { became_leader.Cancel(); },
                                           [this, &stop] {
                                             lost_lease = true;
                                             stop.Cancel();
                                           },
                                           [&metrics](bool l) { metrics.SetLeader(l); }})) {}

  bool WaitForLeadership(const CancelToken& s) const {
    while (!became_leader.cancelled() && !s.cancelled()) {
      (void)s.SleepFor(std::chrono::milliseconds(100));
    }
    return !s.cancelled();
  }
};

// ---- signals ----

// Waits for SIGINT/SIGTERM, polling so that it also ends when the controller stops by itself
// (leadership lost) without anyone having to signal it. Between signals it hands freed memory back
// to the system every `trim_every` (0: never): glibc keeps the free pages inside its heaps (a list
// response's parse garbage, a burst's transient objects) until the top of a heap is free;
// malloc_trim returns every whole free page of every arena.
std::thread SignalThread(const sigset_t& signals, CancelToken& stop,
                         std::chrono::seconds trim_every) {
  return std::thread([&signals, &stop, trim_every] {
    const timespec tick{0, 200'000'000L};
    auto next_trim = std::chrono::steady_clock::now() + trim_every;
    while (!stop.cancelled()) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig > 0) {
        log::Info("controller", "stopping", {{"signal", std::to_string(sig)}});
        stop.Cancel();
      }
      if (trim_every.count() > 0 && std::chrono::steady_clock::now() >= next_trim) {
        (void)malloc_trim(0);
        next_trim = std::chrono::steady_clock::now() + trim_every;
      }
    }
  });
}

// glibc's allocator, tuned for a small long-running process with ~26 threads: two arenas instead of
// one per allocating thread, and a fixed mmap threshold (no dynamic raise), so that the large
// transient buffers of a list response are returned to the system when freed. Measured on the
// burst preset (100 rollouts, idle RSS median): default 29.8 MiB, 2 arenas 25.1 MiB, both 24.1
// MiB; jemalloc 36.1 MiB and mimalloc 40.5 MiB (LD_PRELOAD) were worse (README, Performance).
// MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ in the environment still win.
void TuneAllocator() {
  // NOLINTBEGIN(concurrency-mt-unsafe): start-up, before any thread
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // NOLINTEND(concurrency-mt-unsafe)
}

// How often freed memory is returned to the system: 30 s, or ROLLGATE_MALLOC_TRIM_SECONDS (0:
// never; for measuring it, like MALLOC_ARENA_MAX above).
std::chrono::seconds TrimInterval() {
  constexpr std::chrono::seconds kDefault{30};
  const char* v = std::getenv("ROLLGATE_MALLOC_TRIM_SECONDS");  // NOLINT(concurrency-mt-unsafe)
  if (v == nullptr) return kDefault;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != v && *end == '\0' && n >= 0 ? std::chrono::seconds(n) : kDefault;
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  auto parsed = manager::ParseOptions(
      argc, argv, std::string("ghcr.io/rollgate/rollgate-validate:") + ROLLGATE_VERSION);
  if (!parsed.ok()) return Fail(parsed.status().message());
  const manager::Options& o = *parsed;
  if (o.help) {
    std::fputs(o.usage.c_str(), stdout);
    return 0;
  }
  log::SetLevel(o.log_level);
  log::SetFormat(o.log_format);

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  RealClock clock;
  metrics::MetricsOptions mo;
  mo.initially_leader = !o.leader_elect;
  metrics::Metrics metrics(nullptr, mo);
  metrics::Heartbeat heartbeat(clock);
  CancelToken stop;  // SIGINT/SIGTERM or leadership lost; also cancels requests in flight
  // Every check that can fail happens before the first thread starts.
  auto clients = BuildClients(o, clock, stop, metrics);
  if (!clients.ok()) return Fail(clients.status().message());
  std::optional<kube::LeaderElectionOptions> lease;
  if (o.leader_elect) {
    auto lo = LeaseOptions(o, clients->config);
    if (!lo.ok()) return Fail(lo.status().message());
    lease = *lo;
  }

  const std::string host = Hostname();
  kube::AsyncEventRecorder events(*clients->events_client, clock, "rollgate-controller", host);
  manager::WiringOptions wo;
  wo.watch_namespace = o.watch_namespace;
  wo.dry_run = o.dry_run;
  wo.planner.allowed_registries = o.allowed_registries;
  wo.planner.validator_image = o.validator_image;
  wo.planner.gpu_resource = o.gpu_resource;
  wo.planner.validator_requests = o.validator_requests;
  wo.planner.validator_limits = o.validator_limits;
  wo.planner.pod_health.image_pull_failure = std::chrono::seconds(o.image_pull_failure_seconds);
  wo.planner.pod_health.crash_restarts = o.crash_restarts;
  wo.smoke.keep_finished = std::chrono::seconds(o.smoke_check_keep_seconds);
  wo.controller.concurrency = o.concurrency;
  wo.controller.heartbeat = &heartbeat;
  wo.controller.metrics = &metrics;
  wo.on_watch_restart = [&metrics](const std::string& resource) {
    metrics.CountWatchRestart(resource);
  };
  for (const auto& e : o.analysis_endpoints) wo.planner.analysis_endpoints.push_back(e.url);
  wo.analysis_workers = o.analysis_workers;
  wo.prometheus_factory = [&o] {
    rollout::PrometheusClientOptions po;
    po.endpoints = o.analysis_endpoints;
    return rollout::NewPrometheusClient(std::move(po));
  };
  std::unique_ptr<rollout::DockerConfigFile> registry_auth;
  if (!o.registry_auth_file.empty()) {
    registry_auth = std::make_unique<rollout::DockerConfigFile>(o.registry_auth_file, clock);
    if (Status st = registry_auth->Load(); !st.ok()) {
      return Fail("--registry-auth-file: " + st.message());
    }
  }
  wo.registry_factory = [&o, auth = registry_auth.get()] {
    rollout::RegistryClientOptions ro;
    ro.plain_http = o.registry_plain_http;
    ro.ca_pem = o.registry_ca_pem;
    ro.user_agent = "rollgate-controller/" ROLLGATE_VERSION;
    if (auth != nullptr) {
      ro.credentials = [auth](std::string_view registry) { return auth->For(registry); };
    }
    return rollout::NewRegistryClient(std::move(ro));
  };
  // Remote clusters (environments[].cluster): a client per kubeconfig Secret, each with its own
  // rate limiter at the controller's QPS, and a shorter request timeout, so that a frozen cluster
  // holds a worker for at most 10 s before its breaker opens (kube/cluster_registry.h).
  wo.cluster_factory = [&o, &clock, &stop, &metrics](
                           const kube::RestConfig& c) -> Result<std::unique_ptr<kube::KubeClient>> {
    kube::RestClientOptions rro;
    rro.cancel = &stop;
    rro.qps = o.kube_qps;
    rro.burst = o.kube_burst;
    rro.request_timeout = std::chrono::seconds(10);
    rro.max_retries = 1;
    rro.observe = [&metrics](const std::string& verb, int code, std::chrono::nanoseconds d) {
      metrics.ObserveKubeRequest(verb, code, d);
    };
    auto rc = kube::RestClient::FromConfig(c, clock, rro);
    if (!rc.ok()) return rc.status();
    return std::unique_ptr<kube::KubeClient>(std::move(rc).value());
  };
  std::unique_ptr<Election> election;
  if (lease) {
    election = std::make_unique<Election>(*clients->lease_client, clock, *lease, stop, metrics);
    wo.controller.wait_for_leadership = [&e = *election](const CancelToken& s) {
      return e.WaitForLeadership(s);
    };
  }
  manager::ControllerSet set(*clients->client, clock, events, wo);
  manager::Controller& controller = set.controller();

  // ---- serving ----
  std::unique_ptr<metrics::MetricsAuthorizer> metrics_auth;
  metrics::MetricsSecurity security;
  if (o.metrics_secure) {
    auto tls = o.metrics_cert_dir.empty() ? metrics::SelfSignedServerTls("rollgate-metrics")
                                          : metrics::LoadServerTls(o.metrics_cert_dir + "/tls.crt",
                                                                   o.metrics_cert_dir + "/tls.key");
    if (!tls.ok()) return Fail(tls.status().message());
    metrics_auth = std::make_unique<metrics::MetricsAuthorizer>(*clients->auth_client, clock);
    security = {*tls, metrics_auth.get()};
  }
  auto metrics_server = metrics::MetricsServer::Start(
      o.metrics_bind, metrics.Exposition(), [&] { metrics.SetQueueDepth(controller.QueueDepth()); },
      security);
  if (!metrics_server.ok()) return Fail(metrics_server.status().message());
  // /healthz fails when the work loop is wedged, or when a cache has heard nothing from the API
  // server for twice the watch progress bound: its watch was restarted and is still silent.
  const auto stall_bound = 2 * kube::InformerOptions{}.watch_progress_timeout;
  auto health_server = metrics::HealthServer::Start(
      o.health_bind, {[&] { return controller.HasSynced(); },
                      [&]() -> std::optional<std::string> {
                        if (auto w = heartbeat.Wedged(controller.QueueDepth())) return w;
                        return set.Stalled(stall_bound);
                      }});
  if (!health_server.ok()) return Fail(health_server.status().message());

  log::Info("controller", "starting",
            {{"version", ROLLGATE_VERSION},
             {"config", clients->config.source},
             {"server", clients->config.server},
             {"namespace", o.watch_namespace.empty() ? "(all)" : o.watch_namespace},
             {"metrics", o.metrics_bind},
             {"metrics_tls", !o.metrics_secure            ? "off"
                             : o.metrics_cert_dir.empty() ? "self-signed"
                                                          : o.metrics_cert_dir},
             {"health", o.health_bind},
             {"leader_election", lease ? lease->namespace_ + "/" + lease->name : "off"}});

  std::thread signal_thread = SignalThread(stop_signals, stop, TrimInterval());
  std::thread elector_thread;
  if (election) elector_thread = std::thread([&] { election->elector->Run(stop); });
  controller.Run(stop);
  if (elector_thread.joinable()) elector_thread.join();  // releases the lease on SIGTERM
  stop.Cancel();                                         // the controller may have ended on its own
  signal_thread.join();
  if (election && election->lost_lease) {
    log::Error("controller", "stopped: leadership lost");
    return 1;
  }
  log::Info("controller", "stopped");
  return 0;
}
