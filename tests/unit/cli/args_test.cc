#include "controller/cli/args.h"

#include <gtest/gtest.h>

namespace rollgate::cli {
namespace {

Result<Options> Parse(std::vector<std::string> args, const std::string& argv0 = "rollgate") {
  args.insert(args.begin(), argv0);
  return ParseArgs(args);
}

TEST(CliArgsTest, KubectlFlagsInAnyPosition) {
  auto o =
      Parse({"get", "web", "-n", "shop", "--context=kind", "--kubeconfig", "/k", "-o", "yaml"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->verb, Verb::kGet);
  EXPECT_EQ(o->name, "web");
  EXPECT_EQ(o->namespace_, "shop");
  EXPECT_EQ(o->context, "kind");
  EXPECT_EQ(o->kubeconfig, "/k");
  EXPECT_EQ(o->output, OutputFormat::kYaml);
  EXPECT_EQ(o->program, "rollgate");

  o = Parse({"-A", "list", "-owide"}, "/usr/local/bin/kubectl-rollgate");
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->verb, Verb::kList);
  EXPECT_TRUE(o->all_namespaces);
  EXPECT_EQ(o->output, OutputFormat::kWide);
  EXPECT_EQ(o->program, "kubectl rollgate");

  o = Parse({"status", "web", "-w", "--until-done"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->verb, Verb::kGet);
  EXPECT_EQ(o->verb_word, "status");
  EXPECT_TRUE(o->watch);
  EXPECT_TRUE(o->until_done);

  o = Parse({"get", "-A", "-o", "name"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_TRUE(o->name.empty());
  EXPECT_EQ(o->output, OutputFormat::kName);

  for (const char* verb : {"promote", "abort", "retry"}) {
    o = Parse({verb, "web"});
    ASSERT_TRUE(o.ok()) << verb;
    EXPECT_EQ(o->verb_word, verb);
  }
  o = Parse({"completion", "zsh"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->verb, Verb::kCompletion);
  EXPECT_EQ(Parse({"resolve", "img:1", "--platform", "linux/arm64"})->resolve.platforms,
            std::vector<std::string>{"linux/arm64"});
  EXPECT_EQ(Parse({"resolve", "img:1"})->resolve.ca_file, kSystemCaFile);
}

TEST(CliArgsTest, HelpAndNothingAreHelp) {
  EXPECT_EQ(Parse({})->verb, Verb::kHelp);
  EXPECT_EQ(Parse({"get", "--help"})->verb, Verb::kHelp);
  EXPECT_EQ(Parse({"-h"})->verb, Verb::kHelp);
}

TEST(CliArgsTest, UsageErrorsSayWhatIsWrong) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"frobnicate"}, R"(unknown command "frobnicate" for "rollgate")"},
      {{"list", "x"}, "list takes no arguments (get NAME shows one rollout)"},
      {{"get", "a", "b"}, "get takes at most one rollout name"},
      {{"status"}, "status needs exactly one rollout name"},
      {{"promote"}, "promote needs exactly one rollout name"},
      {{"abort", "a", "b"}, "abort needs exactly one rollout name"},
      {{"resolve"}, "resolve needs exactly one image reference"},
      {{"version", "x"}, "version takes no arguments"},
      {{"completion", "fish"}, "completion needs one shell: bash or zsh"},
      {{"get", "web", "-o", "xml"},
       "unable to match a printer suitable for the output format \"xml\", allowed formats are: "
       "json,name,wide,yaml"},
      {{"promote", "web", "-o", "json"},
       "-o/--output applies to list, get, history and diff, not promote"},
      {{"history"}, "history needs exactly one rollout name"},
      {{"history", "a", "b"}, "history needs exactly one rollout name"},
      {{"diff"}, "diff needs exactly one rollout name"},
      {{"history", "web", "-o", "wide"}, "history prints a table, json or yaml; not -o wide"},
      {{"diff", "web", "-o", "name"}, "diff prints a table, json or yaml; not -o name"},
      {{"history", "web", "-w"}, "-w/--watch applies to get NAME"},
      {{"get", "web", "-A"}, "a rollout cannot be retrieved by name across all namespaces"},
      {{"retry", "web", "-A"}, "-A/--all-namespaces applies to list, get and dashboard, not retry"},
      {{"list", "-w"}, "-w/--watch applies to get NAME"},
      {{"get", "-w"}, "-w/--watch applies to get NAME"},
      {{"get", "web", "-w", "-o", "json"},
       "--watch draws the tree; it cannot be combined with -o json"},
      {{"get", "web", "--until-done"}, "--until-done applies to get NAME --watch"},
      {{"get", "web", "-x"}, "unknown shorthand flag: 'x' in -x"},
      {{"get", "web", "--nope"}, "unknown flag --nope"},
      {{"get", "web", "-n"}, "flag -n needs a value"},
  };
  for (const auto& c : cases) {
    auto o = Parse(c.first);
    ASSERT_FALSE(o.ok()) << c.second;
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(o.status().message(), c.second);
  }
}

TEST(CliArgsTest, HistoryAndDiffTakeOneRolloutAndPrintJsonOrYaml) {
  for (const char* verb : {"history", "diff"}) {
    auto o = Parse({verb, "web", "-n", "shop"}, "/usr/local/bin/kubectl-rollgate");
    ASSERT_TRUE(o.ok()) << verb << ": " << o.status().message();
    EXPECT_EQ(o->verb, std::string(verb) == "history" ? Verb::kHistory : Verb::kDiff);
    EXPECT_EQ(o->verb_word, verb);
    EXPECT_EQ(o->name, "web");
    EXPECT_EQ(o->namespace_, "shop");
    EXPECT_EQ(o->output, OutputFormat::kDefault);
    EXPECT_EQ(Parse({verb, "web", "-o", "json"})->output, OutputFormat::kJson);
    EXPECT_EQ(Parse({verb, "-oyaml", "web"})->output, OutputFormat::kYaml);
  }
}

TEST(CliArgsTest, UsageTextHasOneUsageLineAndEveryVerb) {
  const std::string text = UsageText("kubectl rollgate");
  EXPECT_EQ(text.find("Usage: kubectl rollgate [flags] COMMAND\n"), 0U);
  EXPECT_EQ(text.find("Usage:", 1), std::string::npos) << text;
  for (const char* word :
       {"list", "get [NAME]", "status NAME", "promote NAME", "abort NAME", "retry NAME",
        "history NAME", "diff NAME", "resolve IMAGE", "completion bash|zsh", "version",
        "-n, --namespace", "-A, --all-namespaces", "-o, --output", "-w, --watch", "--until-done",
        "--context", "--kubeconfig"}) {
    EXPECT_NE(text.find(word), std::string::npos) << word;
  }
}

TEST(CliArgsTest, DashboardListensOnLoopbackOnly) {
  auto o = Parse({"dashboard"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->verb, Verb::kDashboard);
  EXPECT_EQ(o->dashboard_address, "127.0.0.1");
  EXPECT_EQ(o->dashboard_port, 3100);
  o = Parse({"dashboard", "-A", "--port", "0", "--address", "localhost"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_TRUE(o->all_namespaces);
  EXPECT_EQ(o->dashboard_port, 0);
  EXPECT_EQ(o->dashboard_address, "127.0.0.1");
  EXPECT_EQ(Parse({"dashboard", "--address", "::1"})->dashboard_address, "::1");
  for (const char* addr : {"0.0.0.0", "192.168.1.5", "::", "example.com"}) {
    o = Parse({"dashboard", "--address", addr});
    ASSERT_FALSE(o.ok()) << addr;
    EXPECT_NE(o.status().message().find("loopback"), std::string::npos) << o.status().message();
  }
  EXPECT_FALSE(Parse({"dashboard", "--port", "70000"}).ok());
  EXPECT_FALSE(Parse({"dashboard", "web"}).ok());
  EXPECT_FALSE(Parse({"dashboard", "-o", "json"}).ok());
}

}  // namespace
}  // namespace rollgate::cli
