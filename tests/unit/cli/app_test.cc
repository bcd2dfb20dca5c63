#include "controller/cli/app.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace rollgate::cli {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

// cli::Main as kubectl-rollgate (or `program`) with args, stdout and stderr captured.
Outcome Invoke(const std::vector<std::string>& args, const char* program = "kubectl-rollgate") {
  std::vector<const char*> argv;
  argv.reserve(args.size() + 1);
  argv.push_back(program);
  for (const auto& a : args) argv.push_back(a.c_str());
  Outcome r;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  r.code = Main(static_cast<int>(argv.size()), argv.data());
  r.err = ::testing::internal::GetCapturedStderr();
  r.out = ::testing::internal::GetCapturedStdout();
  return r;
}

class CliAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "rollgate_cli_app_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

// kubectl exits 1 when its kubeconfig or context cannot be used: that is not a usage error.
TEST_F(CliAppTest, UnusableKubeconfigOrContextExitsOne) {
  const std::string absent = dir_ + "/absent.kubeconfig";
  Outcome r = Invoke({"--kubeconfig", absent, "list"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(absent), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--help"), std::string::npos) << "not a usage error: " << r.err;

  const std::string path = dir_ + "/kubeconfig";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\n"
                         "clusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n"
                         "users: [{name: u, user: {token: t}}]\n"
                         "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                         "current-context: x\n";
  for (const char* verb : {"list", "get", "history", "diff", "promote", "abort", "retry"}) {
    std::vector<std::string> args = {"--kubeconfig", path, "--context", "no-such-context", verb};
    if (std::string(verb) != "list") args.emplace_back("web");
    r = Invoke(args);
    EXPECT_EQ(r.code, 1) << verb << ": " << r.err;
    EXPECT_EQ(r.out, "") << verb;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << verb << ": " << r.err;
    EXPECT_NE(r.err.find("no-such-context"), std::string::npos) << verb << ": " << r.err;
  }
}

TEST_F(CliAppTest, UsageErrorsStillExitTwo) {
  Outcome r = Invoke({"--kubeconfig", dir_ + "/absent", "list", "--bogus"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("See 'kubectl rollgate --help' for usage."), std::string::npos) << r.err;
}

// kubectl_complete-rollgate WORDS and `__complete WORDS` answer completion requests: the
// candidates, then cobra's directive; exit 0 even when the API server cannot be asked.
TEST_F(CliAppTest, CompletionRequests) {
  Outcome r = Invoke({"pro"}, "/home/u/.krew/bin/kubectl_complete-rollgate");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "promote\n:4\n");
  EXPECT_EQ(r.err, "");
  r = Invoke({"__complete", "get", "-o", ""});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "json\nyaml\nwide\nname\n:4\n");
  r = Invoke({"__complete", "--kubeconfig", dir_ + "/absent", "get", ""});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, ":4\n");
  EXPECT_EQ(r.err, "");
  r = Invoke({"--kubeconfig", dir_ + "/absent", "promote", ""}, "kubectl_complete-rollgate");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, ":4\n");
  // An unreachable server (a closed port): no names, quickly.
  const std::string path = dir_ + "/kubeconfig";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\n"
                         "clusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n"
                         "users: [{name: u, user: {token: t}}]\n"
                         "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                         "current-context: x\n";
  r = Invoke({"--kubeconfig", path, "get", ""}, "kubectl_complete-rollgate");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, ":4\n");
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace rollgate::cli
