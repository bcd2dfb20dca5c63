// Tests of rollgate-controller's flag parsing and start-up checks (ParseOptions).
// Thread-safety: single-threaded tests.
#include "controller/manager/options.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace rollgate::manager {
namespace {

Result<Options> Parse(const std::vector<std::string>& args) {
  std::string program = "rollgate-controller";
  std::vector<std::string> copies = args;
  std::vector<char*> argv = {program.data()};
  for (auto& a : copies) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data(), "validate:1");
}

TEST(ParseOptions, DefaultsAreTheDocumentedOnes) {
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->kube_qps, 50);
  EXPECT_EQ(o->kube_burst, 100);
  EXPECT_EQ(o->concurrency, 4);
  EXPECT_EQ(o->validator_image, "validate:1");
  EXPECT_EQ(o->gpu_resource, "nvidia.com/gpu");
  EXPECT_EQ(o->log_level, log::Level::kInfo);
  EXPECT_EQ(o->log_format, log::OutputFormat::kText);
  EXPECT_EQ(o->metrics_bind, ":8080");
  EXPECT_EQ(o->health_bind, ":8081");
  EXPECT_FALSE(o->leader_elect);
  EXPECT_FALSE(o->help);
  EXPECT_TRUE(o->analysis_endpoints.empty());  // secure default: no analysis endpoint allowed
  EXPECT_EQ(o->analysis_workers, 4);
  EXPECT_EQ(o->image_pull_failure_seconds, 30);
  EXPECT_EQ(o->crash_restarts, 3);
}

TEST(ParseOptions, AnalysisEndpointsFileIsReadAndChecked) {
  const std::string dir = ::testing::TempDir();
  const std::string good = dir + "/rollgate-endpoints-good.json";
  std::ofstream(good) << R"({"endpoints": [{"url": "http://prom:9090"},
      {"url": "https://prom.tls:9443", "caFile": "/etc/ca.crt", "bearerTokenFile": "/etc/t"}]})";
  auto o = Parse({"--analysis-endpoints-file=" + good, "--analysis-workers=2"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  ASSERT_EQ(o->analysis_endpoints.size(), 2u);
  EXPECT_EQ(o->analysis_endpoints[1].url, "https://prom.tls:9443");
  EXPECT_EQ(o->analysis_endpoints[1].bearer_token_file, "/etc/t");
  EXPECT_EQ(o->analysis_workers, 2);

  const std::string bad = dir + "/rollgate-endpoints-bad.json";
  std::ofstream(bad) << R"({"endpoints": [{"url": "https://prom.tls:9443"}]})";
  o = Parse({"--analysis-endpoints-file=" + bad});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("--analysis-endpoints-file " + bad +
                                      ": endpoints[0]: an https endpoint needs caFile"),
            std::string::npos)
      << o.status().message();
}

TEST(ParseOptions, FlagsAreRead) {
  auto o = Parse({"--concurrency=8", "--log-level=debug", "--log-format=json", "--dry-run",
                  "--allowed-registries=registry.example.com,*.corp.example", "--leader-elect",
                  "--leader-election-lease-duration=4", "--image-pull-failure-seconds=90",
                  "--crash-restarts=5", "--smoke-check-keep-seconds=60"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->concurrency, 8);
  EXPECT_EQ(o->log_level, log::Level::kDebug);
  EXPECT_EQ(o->log_format, log::OutputFormat::kJson);
  EXPECT_TRUE(o->dry_run);
  EXPECT_EQ(o->allowed_registries,
            (std::vector<std::string>{"registry.example.com", "*.corp.example"}));
  EXPECT_TRUE(o->leader_elect);
  EXPECT_EQ(Seconds(o->lease_duration_s), std::chrono::milliseconds(4000));
  EXPECT_EQ(o->image_pull_failure_seconds, 90);
  EXPECT_EQ(o->crash_restarts, 5);
  EXPECT_EQ(o->smoke_check_keep_seconds, 60);
}

TEST(ParseOptions, ValidatorResourcesDefaultAndCanBeReplaced) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->validator_requests,
            (std::map<std::string, std::string>{{"cpu", "10m"}, {"memory", "64Mi"}}));
  EXPECT_EQ(d->validator_limits,
            (std::map<std::string, std::string>{{"cpu", "1"}, {"memory", "1Gi"}}));
  auto o = Parse({"--validator-requests=memory=128Mi", "--validator-limits=memory=2Gi,cpu=500m"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->validator_requests, (std::map<std::string, std::string>{{"memory", "128Mi"}}));
  EXPECT_EQ(o->validator_limits,
            (std::map<std::string, std::string>{{"cpu", "500m"}, {"memory", "2Gi"}}));
}

TEST(ParseOptions, HelpReturnsTheUsage) {
  auto o = Parse({"--help"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->help);
  EXPECT_NE(o->usage.find("--kube-qps"), std::string::npos) << o->usage;
}

TEST(ParseOptions, EachBadValueIsOneErrorNamingTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--log-level=loud"}, "--log-level"},
      {{"--log-format=xml"}, "--log-format"},
      {{"--concurrency=0"}, "--concurrency"},
      {{"--concurrency=65"}, "--concurrency"},
      {{"--kube-burst=0"}, "--kube-burst"},
      {{"--kube-qps=-1"}, "--kube-qps"},
      {{"--allowed-registries=http://x"}, "--allowed-registries"},
      {{"--metrics-bind-address=nonsense:port"}, "nonsense:port"},
      {{"--no-such-flag"}, "no-such-flag"},
      {{"--validator-requests=memory"}, "--validator-requests"},
      {{"--validator-limits=memory=lots"}, "--validator-limits"},
      {{"--validator-limits=nvidia.com/gpu=1"}, "the worker's own GPU"},
      {{"--analysis-endpoints-file=/nonexistent/endpoints.json"}, "--analysis-endpoints-file"},
      {{"--analysis-workers=0"}, "--analysis-workers"},
      {{"--image-pull-failure-seconds=-1"}, "--image-pull-failure-seconds"},
      {{"--crash-restarts=0"}, "--crash-restarts"},
      {{"--smoke-check-keep-seconds=-1"}, "--smoke-check-keep-seconds"},
  };
  for (const auto& [args, names] : cases) {
    auto o = Parse(args);
    ASSERT_FALSE(o.ok()) << names;
    const Status& st = o.status();
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << names;
    EXPECT_NE(st.message().find(names), std::string::npos) << names << ": " << st.message();
  }
}

}  // namespace
}  // namespace rollgate::manager
