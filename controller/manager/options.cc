#include "controller/manager/options.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "controller/common/flags.h"
#include "controller/metrics/bind_address.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/image_ref.h"

namespace rollgate::manager {
namespace {

Status Invalid(const std::string& msg) { return Status(StatusCode::kInvalidArgument, msg); }

void Define(FlagSet& fs, Options& o, std::string& log_level, std::string& log_format,
            std::vector<std::string>& requests, std::vector<std::string>& limits) {
  fs.String("kubeconfig", &o.kubeconfig,
            "path to a kubeconfig; default $KUBECONFIG, then in-cluster, then ~/.kube/config");
  fs.String("context", &o.context, "kubeconfig context to use (default: current-context)");
  fs.String("namespace", &o.watch_namespace, "watch only this namespace (default: all)");
  fs.Double("kube-qps", &o.kube_qps, "client-side limit of API requests per second");
  fs.Int("kube-burst", &o.kube_burst, "burst of API requests above --kube-qps");
  fs.Int("concurrency", &o.concurrency, "rollouts reconciled in parallel");
  fs.List("allowed-registries", &o.allowed_registries,
          "registries (host[:port][/path] or *.domain) images may come from; empty: any");
  fs.String("analysis-endpoints-file", &o.analysis_endpoints_file,
            "JSON file listing the Prometheus endpoints canary analysis may query, with their CA "
            "and credential files ({\"endpoints\":[{\"url\":...,\"caFile\":...}]}); unset: "
            "none may be queried");
  fs.Int("analysis-workers", &o.analysis_workers,
         "analysis samples taken at once (off the reconcile workers)");
  fs.Bool("dry-run", &o.dry_run, "plan and report, but patch and write nothing");
  fs.String("validator-image", &o.validator_image,
            "image of rollgate-validate, injected into GPU workers that require CUDA validation");
  fs.String("gpu-resource", &o.gpu_resource, "extended resource that marks a GPU container");
  fs.List("validator-requests", &requests,
          "requests of the injected rollgate-validate, name=quantity,... (cpu=10m,memory=64Mi)");
  fs.List("validator-limits", &limits,
          "limits of the injected rollgate-validate, name=quantity,... (cpu=1,memory=1Gi)");
  fs.List("registry-plain-http", &o.registry_plain_http,
          "registries (host[:port]) the pre-flight of spec.imagePolicy speaks plain HTTP to; "
          "every other one over HTTPS");
  fs.String("registry-ca-file", &o.registry_ca_file,
            "PEM file of the CAs trusted for HTTPS registries and their token realms");
  fs.String("registry-auth-file", &o.registry_auth_file,
            "registry credentials: a .dockerconfigjson file (a kubernetes.io/dockerconfigjson "
            "Secret mounted as a volume; re-read when it changes); unset: anonymous");
  fs.Int("image-pull-failure-seconds", &o.image_pull_failure_seconds,
         "a new pod that still cannot pull its image this many seconds after its creation fails "
         "the environment ImagePullFailed (at once for an invalid reference)");
  fs.Int("crash-restarts", &o.crash_restarts,
         "a container of a new pod that restarted this many times fails the environment "
         "ContainerCrashing");
  fs.Int("smoke-check-keep-seconds", &o.smoke_check_keep_seconds,
         "a failed smoke check's Job (and its pod's log) is kept this long for debugging "
         "(its ttlSecondsAfterFinished); a passed check's Job is deleted at once");
  fs.Bool("leader-elect", &o.leader_elect,
          "elect a leader on a Lease; only the leader reconciles (run several replicas)");
  fs.String("leader-election-namespace", &o.leader_election_namespace,
            "namespace of the Lease (default: the controller's own namespace)");
  fs.String("leader-election-id", &o.leader_election_id, "name of the Lease");
  fs.Double("leader-election-lease-duration", &o.lease_duration_s, "seconds");
  fs.Double("leader-election-renew-deadline", &o.renew_deadline_s, "seconds");
  fs.Double("leader-election-retry-period", &o.retry_period_s, "seconds");
  fs.String("log-level", &log_level, "debug, info, warning or error");
  fs.String("log-format", &log_format, "text or json");
  fs.String("metrics-bind-address", &o.metrics_bind,
            R"(address of /metrics (":8080", "127.0.0.1:8080", "0" disables it))");
  fs.Bool("metrics-secure", &o.metrics_secure,
          "serve /metrics over HTTPS to bearer tokens allowed to get /metrics (TokenReview + "
          "SubjectAccessReview)");
  fs.String("metrics-cert-dir", &o.metrics_cert_dir,
            "directory with tls.crt and tls.key for --metrics-secure (default: self-signed)");
  fs.String("health-probe-bind-address", &o.health_bind,
            "address of /healthz and /readyz (\"0\" disables them)");
}

// "cpu=10m,memory=64Mi" -> {cpu: 10m, memory: 64Mi}; the GPU resource is the worker's own.
Status ParseQuantities(const std::string& flag, const std::vector<std::string>& entries,
                       const std::string& gpu_resource, std::map<std::string, std::string>& out) {
  out.clear();
  for (const std::string& e : entries) {
    const auto eq = e.find('=');
    const std::string name = e.substr(0, eq);
    const std::string quantity = eq == std::string::npos ? "" : e.substr(eq + 1);
    const bool name_ok =
        !name.empty() &&
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-./") == std::string::npos;
    const bool quantity_ok =
        !quantity.empty() && quantity.size() <= 32 &&
        quantity.find_first_not_of("0123456789.eEkKmMGTPi+-") == std::string::npos &&
        quantity[0] >= '0' && quantity[0] <= '9';
    std::string msg = "--" + flag;
    if (!name_ok || !quantity_ok) {
      msg += ": \"";
      msg += e;
      msg += "\" is not name=quantity (e.g. memory=64Mi)";
      return Invalid(msg);
    }
    if (name == gpu_resource) {
      msg += ": ";
      msg += name;
      msg += " is set to the worker's own GPU request";
      return Invalid(msg);
    }
    out[name] = quantity;
  }
  return Status::Ok();
}

Status Check(Options& o, const std::string& log_level, const std::string& log_format) {
  if (log_level == "debug") {
    o.log_level = log::Level::kDebug;
  } else if (log_level == "warning") {
    o.log_level = log::Level::kWarning;
  } else if (log_level == "error") {
    o.log_level = log::Level::kError;
  } else if (log_level != "info") {
    return Invalid("invalid value \"" + log_level + "\" for flag --log-level");
  }
  if (log_format == "json") {
    o.log_format = log::OutputFormat::kJson;
  } else if (log_format != "text") {
    return Invalid("invalid value \"" + log_format + "\" for flag --log-format: want text or json");
  }
  if (o.kube_qps < 0 || o.kube_burst < 1)
    return Invalid("--kube-qps must be >= 0, --kube-burst >= 1");
  if (o.concurrency < 1 || o.concurrency > 64) return Invalid("--concurrency must be in [1, 64]");
  if (o.analysis_workers < 1 || o.analysis_workers > 64) {
    return Invalid("--analysis-workers must be in [1, 64]");
  }
  if (o.image_pull_failure_seconds < 0 || o.image_pull_failure_seconds > 86400) {
    return Invalid("--image-pull-failure-seconds must be in [0, 86400]");
  }
  if (o.crash_restarts < 1 || o.crash_restarts > 1000) {
    return Invalid("--crash-restarts must be in [1, 1000]");
  }
  if (o.smoke_check_keep_seconds < 0 || o.smoke_check_keep_seconds > 7 * 86400) {
    return Invalid("--smoke-check-keep-seconds must be in [0, 604800]");
  }
  if (!o.analysis_endpoints_file.empty()) {
    std::ifstream in(o.analysis_endpoints_file);
    if (!in) return Invalid("--analysis-endpoints-file: cannot read " + o.analysis_endpoints_file);
    std::stringstream text;
    text << in.rdbuf();
    auto eps = rollout::ParseAnalysisEndpoints(text.str());
    if (!eps.ok()) {
      return Invalid("--analysis-endpoints-file " + o.analysis_endpoints_file + ": " +
                     eps.status().message());
    }
    o.analysis_endpoints = std::move(eps).value();
  }
  if (!o.registry_ca_file.empty()) {
    std::ifstream in(o.registry_ca_file);
    // The default bundle may be absent (a machine without ca-certificates): then no HTTPS
    // registry is trusted, which the pre-flight reports per rollout. A named file must exist.
    if (!in && o.registry_ca_file != Options{}.registry_ca_file) {
      return Invalid("--registry-ca-file: cannot read " + o.registry_ca_file);
    }
    std::stringstream text;
    text << in.rdbuf();
    o.registry_ca_pem = text.str();
  }
  for (const auto& r : o.registry_plain_http) {
    auto parsed = rollout::ParseImageRef(r + "/x:1");
    if (!parsed.ok() || parsed->registry != r) {
      return Invalid("--registry-plain-http: \"" + r + "\" is not a registry host[:port]");
    }
  }
  if (Status st = rollout::ValidateAllowedRegistries(o.allowed_registries); !st.ok()) {
    return Invalid("--allowed-registries: " + st.message());
  }
  for (const auto* bind : {&o.metrics_bind, &o.health_bind}) {
    if (auto parsed = metrics::ParseBindAddress(*bind); !parsed.ok()) {
      return Invalid(parsed.status().message());
    }
  }
  if (!o.metrics_cert_dir.empty() && !o.metrics_secure) {
    return Invalid("--metrics-cert-dir needs --metrics-secure");
  }
  return Status::Ok();
}

}  // namespace

std::chrono::milliseconds Seconds(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

Result<Options> ParseOptions(int argc, char** argv, const std::string& default_validator_image) {
  Options o;
  o.validator_image = default_validator_image;
  std::string log_level = "info";
  std::string log_format = "text";
  std::vector<std::string> requests;
  std::vector<std::string> limits;
  FlagSet fs("rollgate-controller");
  Define(fs, o, log_level, log_format, requests, limits);
  if (Status st = fs.Parse(argc, argv, &o.help); !st.ok()) return Invalid(st.message());
  if (o.help) {
    o.usage = fs.Usage();
    return o;
  }
  if (Status st = Check(o, log_level, log_format); !st.ok()) return st;
  if (requests.empty()) requests = {"cpu=10m", "memory=64Mi"};
  if (limits.empty()) limits = {"cpu=1", "memory=1Gi"};
  if (Status st =
          ParseQuantities("validator-requests", requests, o.gpu_resource, o.validator_requests);
      !st.ok()) {
    return st;
  }
  if (Status st = ParseQuantities("validator-limits", limits, o.gpu_resource, o.validator_limits);
      !st.ok()) {
    return st;
  }
  return o;
}

}  // namespace rollgate::manager
