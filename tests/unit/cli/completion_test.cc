#include "controller/cli/completion.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "controller/cli/args.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::cli {
namespace {

using Words = std::vector<std::string>;
using Names = std::vector<std::string>;

// ContainerRollouts per namespace and the namespaces; records what was listed.
class FakeClient : public testing::UnimplementedClient {
 public:
  Result<kube::ObjectList> List(const kube::ResourceType& rt, const std::string& ns,
                                const kube::ListOptions&) override {
    const std::lock_guard<std::mutex> lock(mu);
    lists.push_back(rt.resource + " " + ns);
    if (error) return *error;
    kube::ObjectList l;
    auto add = [&l](const std::string& name) {
      kube::Json o = kube::Json::object();
      o["metadata"]["name"] = kube::Json::string(name);
      l.items.push_back(o);
    };
    if (rt.resource == "namespaces") {
      for (const auto& [n, _] : rollouts) add(n);
    } else if (rt.resource == "containerrollouts") {
      if (auto it = rollouts.find(ns); it != rollouts.end()) {
        for (const auto& n : it->second) add(n);
      }
    }
    return l;
  }

  std::mutex mu;
  std::map<std::string, Names> rollouts = {{"default", {"web", "api"}},
                                           {"shop", {"checkout", "cart", "web-shop"}},
                                           {"team-a", {"batch"}}};
  std::optional<Status> error;
  std::vector<std::string> lists;
};

class CliCompletionTest : public ::testing::Test {
 protected:
  // Complete with the fake: connect records the kubeconfig and context it was asked for.
  Completion Run(const Words& words) {
    return Complete(
        words,
        [this](const std::string& kubeconfig, const std::string& context) -> Result<CompletionApi> {
          connects.push_back(kubeconfig + "|" + context);
          if (connect_error) return *connect_error;
          return CompletionApi{client, context_ns};
        });
  }
  Names Candidates(const Words& words) { return Run(words).candidates; }

  std::shared_ptr<FakeClient> client = std::make_shared<FakeClient>();
  std::string context_ns;
  std::optional<Status> connect_error;
  std::vector<std::string> connects;
};

TEST_F(CliCompletionTest, FirstWordIsAVerb) {
  const Completion c = Run({""});
  EXPECT_EQ(c.directive, kDirectiveNoFileComp);
  for (const char* verb :
       {"list", "get", "status", "promote", "abort", "retry", "resolve", "completion", "version"}) {
    EXPECT_NE(std::find(c.candidates.begin(), c.candidates.end(), verb), c.candidates.end())
        << verb;
  }
  EXPECT_EQ(Candidates({"pr"}), Names{"promote"});
  EXPECT_EQ(Candidates({"re"}), (Names{"retry", "resolve"}));
  EXPECT_EQ(Candidates({"zz"}), Names{});
  // After flags, the first positional word is still the verb; an empty line too.
  EXPECT_EQ(Candidates({"-n", "shop", "ab"}), Names{"abort"});
  EXPECT_EQ(Candidates({"--namespace=shop", "-A", "li"}), Names{"list"});
  EXPECT_FALSE(Candidates({}).empty());
  EXPECT_TRUE(connects.empty()) << "verbs need no API server";
}

// Every command of the help is a candidate: a verb added to UsageText is completed as well.
TEST_F(CliCompletionTest, EveryCommandOfTheHelpIsCompleted) {
  const std::string usage = UsageText("rollgate");
  const std::size_t from = usage.find("Commands:\n");
  const std::string commands = usage.substr(from, usage.find("\n\n", from) + 1 - from);
  const std::regex line(R"(\n  ([a-z][a-z-]*)[ \n])");
  const Names verbs = Candidates({""});
  int seen = 0;
  for (std::sregex_iterator it(commands.begin(), commands.end(), line), end; it != end;
       ++it, ++seen) {
    EXPECT_NE(std::find(verbs.begin(), verbs.end(), (*it)[1].str()), verbs.end()) << (*it)[1];
  }
  EXPECT_GE(seen, 9);
}

TEST_F(CliCompletionTest, RolloutNamesOfTheNamespace) {
  for (const char* verb : {"get", "status", "promote", "abort", "retry"}) {
    connects.clear();
    client->lists.clear();
    const Completion c = Run({verb, ""});
    EXPECT_EQ(c.candidates, (Names{"api", "web"})) << verb;  // sorted
    EXPECT_EQ(c.directive, kDirectiveNoFileComp) << verb;
    EXPECT_EQ(client->lists, Names{"containerrollouts default"}) << verb;
    EXPECT_EQ(connects, Names{"|"}) << verb;
  }
  EXPECT_EQ(Candidates({"get", "w"}), Names{"web"});
  // -n, --namespace in all their forms, before or after the verb.
  EXPECT_EQ(Candidates({"-n", "shop", "get", ""}), (Names{"cart", "checkout", "web-shop"}));
  EXPECT_EQ(Candidates({"get", "-n", "shop", "c"}), (Names{"cart", "checkout"}));
  EXPECT_EQ(Candidates({"get", "--namespace", "shop", "w"}), Names{"web-shop"});
  EXPECT_EQ(Candidates({"--namespace=team-a", "promote", ""}), Names{"batch"});
  EXPECT_EQ(Candidates({"-nteam-a", "abort", ""}), Names{"batch"});
  EXPECT_EQ(Candidates({"-n=team-a", "retry", ""}), Names{"batch"});
  // The context's namespace when the line names none.
  context_ns = "shop";
  EXPECT_EQ(Candidates({"get", "ca"}), Names{"cart"});
  EXPECT_EQ(Candidates({"-n", "default", "get", ""}), (Names{"api", "web"}));
  // A name already given: nothing more (get takes one).
  EXPECT_EQ(Run({"get", "web", ""}).candidates, Names{});
  EXPECT_EQ(Run({"get", "web", ""}).directive, kDirectiveNoFileComp);
  // After --: positional words only.
  EXPECT_EQ(Candidates({"--", "get", "ca"}), Names{"cart"});
}

TEST_F(CliCompletionTest, KubeconfigAndContextOfTheLineSelectTheServer) {
  EXPECT_EQ(Candidates({"--kubeconfig", "/tmp/kc", "--context", "prod", "get", ""}),
            (Names{"api", "web"}));
  EXPECT_EQ(Candidates({"get", "--context=staging", "--kubeconfig=/k", ""}), (Names{"api", "web"}));
  EXPECT_EQ(connects, (Names{"/tmp/kc|prod", "/k|staging"}));
}

TEST_F(CliCompletionTest, ErrorsGiveNoNamesButStillTheDirective) {
  connect_error = Status(StatusCode::kInvalidArgument, "context \"nope\" not found");
  Completion c = Run({"--context", "nope", "get", ""});
  EXPECT_EQ(c.candidates, Names{});
  EXPECT_EQ(c.directive, kDirectiveNoFileComp);
  EXPECT_EQ(FormatCompletion(c), ":4\n");
  connect_error.reset();
  client->error = Status(StatusCode::kForbidden, "containerrollouts.rollgate.io is forbidden");
  c = Run({"get", ""});
  EXPECT_EQ(c.candidates, Names{});
  EXPECT_EQ(FormatCompletion(c), ":4\n");
  client->error = Status(StatusCode::kTransport, "connection refused");
  EXPECT_EQ(FormatCompletion(Run({"-n", "shop", "promote", "c"})), ":4\n");
  // No connect at all.
  EXPECT_EQ(FormatCompletion(Complete({"get", ""}, nullptr)), ":4\n");
}

TEST_F(CliCompletionTest, FlagsAfterADash) {
  const Names all = Candidates({"get", "-"});
  for (const char* flag :
       {"-n", "--namespace", "-A", "--all-namespaces", "--context", "--kubeconfig", "-o",
        "--output", "-w", "--watch", "--until-done", "--help"}) {
    EXPECT_NE(std::find(all.begin(), all.end(), flag), all.end()) << flag;
  }
  EXPECT_EQ(Candidates({"get", "web", "--wa"}), Names{"--watch"});
  EXPECT_EQ(Candidates({"--all"}), Names{"--all-namespaces"});
  EXPECT_EQ(Candidates({"--u"}), Names{"--until-done"});
  EXPECT_EQ(Run({"-"}).directive, kDirectiveNoFileComp);
  // Every flag of the help is a candidate: a flag added to the FlagSet is completed as well.
  const std::string usage = UsageText("rollgate");
  const std::string flags = usage.substr(usage.find("Flags:"));
  const std::regex flag(R"(--([a-z][a-z-]*))");
  for (std::sregex_iterator it(flags.begin(), flags.end(), flag), end; it != end; ++it) {
    EXPECT_NE(std::find(all.begin(), all.end(), (*it)[0].str()), all.end()) << (*it)[0];
  }
  EXPECT_TRUE(connects.empty()) << "flags need no API server";
}

TEST_F(CliCompletionTest, FlagValues) {
  EXPECT_EQ(Candidates({"get", "-o", ""}), (Names{"json", "yaml", "wide", "name"}));
  EXPECT_EQ(Candidates({"list", "--output", "w"}), Names{"wide"});
  // --output=VALUE: the values alone (the shell keeps "--output=").
  EXPECT_EQ(Candidates({"list", "--output=y"}), Names{"yaml"});
  EXPECT_EQ(Candidates({"list", "-o=n"}), Names{"name"});
  EXPECT_EQ(Run({"get", "-o", ""}).directive, kDirectiveNoFileComp);
  // -o's value is not a rollout name: the name comes after it.
  EXPECT_EQ(Candidates({"get", "-o", "yaml", "w"}), Names{"web"});
  // -n: the namespaces.
  EXPECT_EQ(Candidates({"get", "-n", ""}), (Names{"default", "shop", "team-a"}));
  EXPECT_EQ(Candidates({"--namespace", "t"}), Names{"team-a"});
  EXPECT_EQ(Candidates({"--namespace=s"}), Names{"shop"});
  EXPECT_EQ(client->lists.back(), "namespaces ");
  // File names: no candidates and the default directive, so the shell completes them.
  for (const char* f : {"--kubeconfig", "--registry-ca-file", "--registry-password-file"}) {
    const Completion c = Run({"resolve", f, ""});
    EXPECT_EQ(c.candidates, Names{}) << f;
    EXPECT_EQ(c.directive, kDirectiveDefault) << f;
  }
  EXPECT_EQ(FormatCompletion(Run({"--kubeconfig", "~/"})), ":0\n");
  EXPECT_EQ(FormatCompletion(Run({"--kubeconfig=/tm"})), ":0\n");
  EXPECT_EQ(Candidates({"resolve", "--platform", "linux/a"}),
            (Names{"linux/amd64", "linux/arm64"}));
  // Values that cannot be listed: nothing, no file names.
  EXPECT_EQ(FormatCompletion(Run({"--context", ""})), ":4\n");
  EXPECT_EQ(FormatCompletion(Run({"--registry-username", ""})), ":4\n");
}

TEST_F(CliCompletionTest, OtherArguments) {
  EXPECT_EQ(Candidates({"completion", ""}), (Names{"bash", "zsh"}));
  EXPECT_EQ(Candidates({"completion", "z"}), Names{"zsh"});
  EXPECT_EQ(Candidates({"completion", "bash", ""}), Names{});
  EXPECT_EQ(FormatCompletion(Run({"resolve", ""})), ":4\n");
  EXPECT_EQ(FormatCompletion(Run({"version", ""})), ":4\n");
  EXPECT_EQ(FormatCompletion(Run({"list", ""})), ":4\n");
  EXPECT_EQ(FormatCompletion(Run({"frobnicate", ""})), ":4\n");
  EXPECT_TRUE(connects.empty());
}

TEST_F(CliCompletionTest, FormatIsOneCandidateALineThenTheDirective) {
  EXPECT_EQ(FormatCompletion(Completion{{"api", "web"}, kDirectiveNoFileComp}), "api\nweb\n:4\n");
  EXPECT_EQ(FormatCompletion(Completion{{}, kDirectiveDefault}), ":0\n");
  EXPECT_EQ(FormatCompletion(Run({"get", ""})), "api\nweb\n:4\n");
}

TEST(CliCompletionWordsTest, TheCompletionExecutableAndCobrasHiddenCommand) {
  EXPECT_EQ(CompletionWords({"kubectl_complete-rollgate", "get", ""}), (Words{"get", ""}));
  EXPECT_EQ(CompletionWords({"/home/u/.krew/bin/kubectl_complete-rollgate", "-n", "x", "g"}),
            (Words{"-n", "x", "g"}));
  EXPECT_EQ(CompletionWords({"kubectl_complete-rollgate"}), Words{});
  EXPECT_EQ(CompletionWords({"rollgate", "__complete", "get", ""}), (Words{"get", ""}));
  EXPECT_EQ(CompletionWords({"/usr/bin/kubectl-rollgate", "__complete", ""}), Words{""});
  EXPECT_EQ(CompletionWords({"rollgate", "__completeNoDesc", "g"}), Words{"g"});
  EXPECT_EQ(CompletionWords({"rollgate", "get", "__complete"}), std::nullopt);
  EXPECT_EQ(CompletionWords({"rollgate", "get", "web"}), std::nullopt);
  EXPECT_EQ(CompletionWords({"kubectl-rollgate", "get"}), std::nullopt);
  EXPECT_EQ(CompletionWords({}), std::nullopt);
}

// The scripts ask the binary (`__complete`) instead of kubectl, for both program names.
TEST(CliCompletionScriptTest, BashAndZshAskTheBinary) {
  for (const char* shell : {"bash", "zsh"}) {
    const std::string s = CompletionScript(shell);
    ASSERT_FALSE(s.empty()) << shell;
    for (const char* word : {"__complete", "rollgate kubectl-rollgate", "_rollgate"}) {
      EXPECT_NE(s.find(word), std::string::npos) << shell << ": " << word;
    }
    EXPECT_EQ(s.find("kubectl get"), std::string::npos) << shell;
  }
  EXPECT_NE(CompletionScript("bash").find("complete -F _rollgate rollgate kubectl-rollgate"),
            std::string::npos);
  EXPECT_NE(CompletionScript("zsh").find("compdef _rollgate rollgate kubectl-rollgate"),
            std::string::npos);
  EXPECT_EQ(CompletionScript("fish"), "");
}

}  // namespace
}  // namespace rollgate::cli
