#include "controller/common/flags.h"

#include <gtest/gtest.h>

namespace rollgate {
namespace {

struct Parsed {
  std::string kubeconfig;
  int concurrency = 4;
  double qps = 20;
  bool leader = true;
  std::vector<std::string> registries;
};

Status ParseArgs(const std::vector<const char*>& flags, Parsed& p, bool* help = nullptr) {
  FlagSet fs("prog");
  fs.String("kubeconfig", &p.kubeconfig, "path");
  fs.Int("concurrency", &p.concurrency, "workers");
  fs.Double("kube-qps", &p.qps, "qps");
  fs.Bool("leader-elect", &p.leader, "elect");
  fs.List("allowed-registries", &p.registries, "registries");
  std::vector<const char*> args = {"prog"};
  for (const char* f : flags) args.push_back(f);
  bool h = false;
  Status st = fs.Parse(static_cast<int>(args.size()), args.data(), &h);
  if (help != nullptr) *help = h;
  return st;
}

TEST(FlagsTest, ParsesBothFormsAndTypes) {
  Parsed p;
  ASSERT_TRUE(
      ParseArgs({"--kubeconfig", "/k", "--concurrency=8", "--kube-qps=2.5", "--leader-elect=false",
                 "--allowed-registries=a.io,b.io", "--allowed-registries", "c.io"},
                p)
          .ok());
  EXPECT_EQ(p.kubeconfig, "/k");
  EXPECT_EQ(p.concurrency, 8);
  EXPECT_DOUBLE_EQ(p.qps, 2.5);
  EXPECT_FALSE(p.leader);
  EXPECT_EQ(p.registries, (std::vector<std::string>{"a.io", "b.io", "c.io"}));
}

TEST(FlagsTest, BareBoolMeansTrue) {
  Parsed p;
  p.leader = false;
  ASSERT_TRUE(ParseArgs({"--leader-elect"}, p).ok());
  EXPECT_TRUE(p.leader);
}

TEST(FlagsTest, ErrorsNameTheFlag) {
  Parsed p;
  EXPECT_EQ(ParseArgs({"--nope=1"}, p).message(), "unknown flag --nope");
  EXPECT_EQ(ParseArgs({"--concurrency=many"}, p).message(),
            "invalid value \"many\" for flag --concurrency: want an integer");
  EXPECT_EQ(ParseArgs({"--concurrency=3x"}, p).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseArgs({"--kube-qps=nan"}, p).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseArgs({"--leader-elect=yes"}, p).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseArgs({"--kubeconfig"}, p).message(), "flag --kubeconfig needs a value");
}

TEST(FlagsTest, HelpStopsParsing) {
  Parsed p;
  bool help = false;
  ASSERT_TRUE(ParseArgs({"--help", "--nope"}, p, &help).ok());
  EXPECT_TRUE(help);
}

TEST(FlagsTest, ShortFormsTakeValuesInEveryKubectlSpelling) {
  for (const std::vector<const char*>& args : {std::vector<const char*>{"-n", "ns1", "get", "x"},
                                               {"get", "-n=ns1", "x"},
                                               {"get", "x", "-nns1"},
                                               {"get", "--namespace", "ns1", "x"}}) {
    std::string ns;
    bool all = false;
    FlagSet fs("prog");
    fs.String("namespace", &ns, "namespace");
    fs.Bool("all-namespaces", &all, "all");
    fs.Short('n', "namespace");
    fs.Short('A', "all-namespaces");
    std::vector<const char*> argv = {"prog"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("-A");
    bool help = false;
    ASSERT_TRUE(fs.Parse(static_cast<int>(argv.size()), argv.data(), &help).ok()) << args[0];
    EXPECT_EQ(ns, "ns1");
    EXPECT_TRUE(all);
    EXPECT_EQ(fs.positional(), (std::vector<std::string>{"get", "x"}));
  }
}

TEST(FlagsTest, ShortFormErrorsNameTheLetter) {
  std::string ns;
  FlagSet fs("prog");
  fs.String("namespace", &ns, "namespace");
  fs.Short('n', "namespace");
  bool help = false;
  std::vector<const char*> unknown = {"prog", "-z"};
  EXPECT_EQ(fs.Parse(2, unknown.data(), &help).message(), "unknown shorthand flag: 'z' in -z");
  std::vector<const char*> missing = {"prog", "-n"};
  EXPECT_EQ(fs.Parse(2, missing.data(), &help).message(), "flag -n needs a value");
  std::vector<const char*> after = {"prog", "--", "-n"};
  ASSERT_TRUE(fs.Parse(3, after.data(), &help).ok());
  EXPECT_EQ(fs.positional(), std::vector<std::string>{"-n"});
}

TEST(FlagsTest, UsageHasOneUsageLineAndFlagsHelpNone) {
  std::string ns;
  FlagSet fs("prog");
  fs.String("namespace", &ns, "namespace");
  fs.Short('n', "namespace");
  const std::string usage = fs.Usage();
  EXPECT_EQ(usage.find("Usage:"), 0U);
  EXPECT_EQ(usage.find("Usage:", 1), std::string::npos);
  EXPECT_EQ(fs.FlagsHelp().find("Usage:"), std::string::npos);
  EXPECT_NE(fs.FlagsHelp().find("  -n, --namespace value"), std::string::npos) << fs.FlagsHelp();
}

}  // namespace
}  // namespace rollgate
