// rollgate-controller's command line: the flags, their defaults, and every check that can fail
// before a thread starts (values in range, log level and format, --allowed-registries, bind
// addresses, leader-election timing). A bad flag is one error naming it; main exits 2.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "controller/common/log.h"
#include "controller/common/status.h"
#include "controller/rollout/analysis.h"

namespace rollgate::manager {

struct Options {
  std::string kubeconfig;
  std::string context;
  std::string watch_namespace;
  double kube_qps = 50;
  int kube_burst = 100;
  int concurrency = 4;
  std::vector<std::string> allowed_registries;
  // --analysis-endpoints-file: the Prometheus endpoints analysis may query (none when unset).
  std::string analysis_endpoints_file;
  std::vector<rollout::AnalysisEndpoint> analysis_endpoints;  // parsed from the file
  int analysis_workers = 4;
  bool dry_run = false;
  std::string validator_image;
  std::string gpu_resource = "nvidia.com/gpu";
  std::map<std::string, std::string> validator_requests;  // resource -> quantity
  std::map<std::string, std::string> validator_limits;
  // Pod health (rollout/pod_health.h): a new pod that cannot pull its image this long after its
  // creation fails the environment ImagePullFailed; a container restarted this often,
  // ContainerCrashing.
  // The registry pre-flight (spec.imagePolicy; rollout/registry_client.h).
  std::vector<std::string> registry_plain_http;  // registries spoken to over plain HTTP
  std::string registry_ca_file = "/etc/ssl/certs/ca-certificates.crt";
  std::string registry_ca_pem;     // read from registry_ca_file
  std::string registry_auth_file;  // a .dockerconfigjson; "" anonymous
  int image_pull_failure_seconds = 30;
  int crash_restarts = 3;
  // A failed smoke check's Job is kept this long (ttlSecondsAfterFinished); a passed one is
  // deleted at once.
  int smoke_check_keep_seconds = 3600;
  bool leader_elect = false;
  std::string leader_election_namespace;
  std::string leader_election_id = "rollgate-controller";
  double lease_duration_s = 15;
  double renew_deadline_s = 10;
  double retry_period_s = 2;
  log::Level log_level = log::Level::kInfo;
  log::OutputFormat log_format = log::OutputFormat::kText;
  std::string metrics_bind = ":8080";
  bool metrics_secure = false;   // HTTPS + TokenReview/SubjectAccessReview on /metrics
  std::string metrics_cert_dir;  // tls.crt + tls.key; empty: self-signed at startup
  std::string health_bind = ":8081";

  bool help = false;  // --help: print `usage` and exit 0
  std::string usage;
};

// Parses and checks argv (argv[0] is the program). `default_validator_image` is the image of
// rollgate-validate that matches this build.
Result<Options> ParseOptions(int argc, char** argv, const std::string& default_validator_image);

std::chrono::milliseconds Seconds(double s);

}  // namespace rollgate::manager
