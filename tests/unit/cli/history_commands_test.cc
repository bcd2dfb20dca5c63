// `rollgate history NAME` and `rollgate diff NAME` (controller/cli/commands.h History, Diff)
// against a fake API client: what they read (the rollout, its Events by field selector, the
// target Deployments), what they print, and their exit codes when something cannot be read.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/api/codec.h"
#include "controller/cli/commands.h"
#include "tests/fakes/unimplemented_client.h"
#include "tests/unit/cli/golden.h"

namespace rollgate::cli {
namespace {

using testing::CliJson;
using testing::ReadCliTestdata;

constexpr char kPinned[] =
    "registry.example/"
    "api:2.0@sha256:1111111111111111111111111111111111111111111111111111111111111111";

// One rollout in namespace shop, Deployments by "ns/name" (or the error reading one gives),
// Events (or the error listing them gives).
class FakeClient : public testing::UnimplementedClient {
 public:
  Result<kube::Json> Get(const kube::ResourceType& rt, const std::string& ns,
                         const std::string& name) override {
    gets.push_back(rt.resource + " " + ns + "/" + name);
    if (rt.resource == "containerrollouts" && rollout && ns == "shop" &&
        kube::MetaString(*rollout, "name") == name) {
      return *rollout;
    }
    if (rt.resource == "deployments") {
      if (auto it = deployment_errors.find(ns + "/" + name); it != deployment_errors.end()) {
        return it->second;
      }
      if (auto it = deployments.find(ns + "/" + name); it != deployments.end()) return it->second;
    }
    return Status(StatusCode::kNotFound,
                  "get " + rt.resource + " " + ns + "/" + name + ": \"" + name + "\" not found");
  }
  Result<kube::ObjectList> List(const kube::ResourceType& rt, const std::string& ns,
                                const kube::ListOptions& opts) override {
    lists.push_back(rt.group + "/" + rt.version + "/" + rt.resource + " " + ns + " " +
                    opts.field_selector);
    if (events_error) return *events_error;
    kube::ObjectList l;
    l.items = events;
    return l;
  }

  std::optional<kube::Json> rollout;
  std::map<std::string, kube::Json> deployments;
  std::map<std::string, Status> deployment_errors;
  std::vector<kube::Json> events;
  std::optional<Status> events_error;
  std::vector<std::string> gets;
  std::vector<std::string> lists;
};

struct Captured {
  std::string out;
  std::string err;
  Io io;
  Captured() {
    io.out = [this](const std::string& s) { out += s; };
    io.err = [this](const std::string& s) { err += s; };
    io.now = [] { return *api::ParseTime("2026-11-28T10:06:00Z"); };
  }
};

Options Opts(Verb verb, const std::string& name, OutputFormat f = OutputFormat::kDefault) {
  Options o;
  o.verb = verb;
  o.verb_word = verb == Verb::kHistory ? "history" : "diff";
  o.name = name;
  o.output = f;
  return o;
}

kube::Json Deployment(const std::string& ns, const std::string& name, const std::string& container,
                      const std::string& image) {
  kube::Json d = CliJson("deployment-prod-api.json");
  d["metadata"]["namespace"] = kube::Json::string(ns);
  d["metadata"]["name"] = kube::Json::string(name);
  kube::Json c = kube::Json::object();
  c["name"] = kube::Json::string(container);
  c["image"] = kube::Json::string(image);
  d["spec"]["template"]["spec"]["containers"] = kube::Json::array();
  d["spec"]["template"]["spec"]["containers"][0] = c;
  return d;
}

std::vector<kube::Json> HistoryEvents() {
  std::vector<kube::Json> out;
  const kube::Json list = CliJson("history-events.json");
  for (const auto& e : list.at("items").as_array()) out.push_back(e);
  return out;
}

TEST(CliHistoryCommandTest, PrintsTheRevisionsThenTheRolloutsEvents) {
  FakeClient c;
  c.rollout = CliJson("history.json");
  c.events = HistoryEvents();
  Captured cap;
  EXPECT_EQ(History(c, Opts(Verb::kHistory, "web"), "shop", cap.io), 0);
  EXPECT_EQ(cap.out, ReadCliTestdata("history.txt"));
  EXPECT_EQ(cap.err, "");
  EXPECT_EQ(c.lists,
            (std::vector<std::string>{"/v1/events shop involvedObject.kind=ContainerRollout,"
                                      "involvedObject.name=web"}));
}

TEST(CliHistoryCommandTest, JsonAndYamlAreTheRecordsWithoutEvents) {
  FakeClient c;
  c.rollout = CliJson("history.json");
  c.events = HistoryEvents();
  for (auto [f, golden] : std::vector<std::pair<OutputFormat, std::string>>{
           {OutputFormat::kJson, "history.out.json"}, {OutputFormat::kYaml, "history.out.yaml"}}) {
    Captured cap;
    EXPECT_EQ(History(c, Opts(Verb::kHistory, "web", f), "shop", cap.io), 0);
    EXPECT_EQ(cap.out, ReadCliTestdata(golden));
    EXPECT_EQ(cap.err, "");
  }
  EXPECT_TRUE(c.lists.empty());
  // The JSON reads back as the records of status.history.
  Captured json;
  ASSERT_EQ(History(c, Opts(Verb::kHistory, "web", OutputFormat::kJson), "shop", json.io), 0);
  const kube::Json list = kube::Json::parse(json.out);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list.at(2).at("revision").as_integer(), 3);
  EXPECT_EQ(list.at(1).at("reason").as_string(), "ProgressDeadlineExceeded");
}

TEST(CliHistoryCommandTest, EventsThatCannotBeListedAreANoteNotAFailure) {
  FakeClient c;
  c.rollout = CliJson("history.json");
  c.events_error = Status(StatusCode::kForbidden, "events is forbidden");
  Captured cap;
  EXPECT_EQ(History(c, Opts(Verb::kHistory, "web"), "shop", cap.io), 0);
  const std::string table = ReadCliTestdata("history.txt");
  EXPECT_EQ(cap.out, table.substr(0, table.find("\n\nEvents:") + 1));
  EXPECT_EQ(cap.err,
            "note: the Events of shop/web cannot be listed: Forbidden: events is forbidden\n");
}

TEST(CliHistoryCommandTest, AMissingRolloutIsAnErrorAndExitOne) {
  FakeClient c;
  for (Verb v : {Verb::kHistory, Verb::kDiff}) {
    Captured cap;
    const int rc = v == Verb::kHistory ? History(c, Opts(v, "nope"), "shop", cap.io)
                                       : Diff(c, Opts(v, "nope"), "shop", cap.io);
    EXPECT_EQ(rc, 1);
    EXPECT_EQ(cap.out, "");
    EXPECT_EQ(cap.err, "error: NotFound: get containerrollouts shop/nope: \"nope\" not found\n");
  }
  EXPECT_TRUE(c.lists.empty());
}

TEST(CliDiffCommandTest, ReadsEveryTargetFreshAndPrintsTheTable) {
  FakeClient c;
  c.rollout = CliJson("midflight.json");
  c.deployments["shop/api"] = Deployment("shop", "api", "api", kPinned);
  c.deployments["shop-staging/api"] = Deployment("shop-staging", "api", "api", kPinned);
  c.deployments["shop-staging/worker"] =
      Deployment("shop-staging", "worker", "worker", "registry.example/worker:1.9");
  c.deployment_errors["shop-prod/api"] =
      Status(StatusCode::kForbidden, "deployments.apps \"api\" is forbidden");
  Captured cap;
  EXPECT_EQ(Diff(c, Opts(Verb::kDiff, "web"), "shop", cap.io), 0) << "differences are not errors";
  testing::ExpectGolden("diff-command.txt", cap.out);
  EXPECT_EQ(cap.err,
            "note: deployment shop-prod/api cannot be read: Forbidden: deployments.apps \"api\" "
            "is forbidden\n");
  for (const char* want : {"deployments shop/api", "deployments shop-staging/api",
                           "deployments shop-staging/worker", "deployments shop-prod/api"}) {
    EXPECT_NE(std::find(c.gets.begin(), c.gets.end(), want), c.gets.end()) << want;
  }
}

TEST(CliDiffCommandTest, JsonIsAListOfRecords) {
  FakeClient c;
  c.rollout = CliJson("midflight.json");
  c.deployments["shop-prod/api"] =
      Deployment("shop-prod", "api", "api", "registry.example/api:2.0");
  Captured cap;
  EXPECT_EQ(Diff(c, Opts(Verb::kDiff, "web", OutputFormat::kJson), "shop", cap.io), 0);
  EXPECT_EQ(cap.err, "") << "not found is a row, not a note";
  const kube::Json list = kube::Json::parse(cap.out);
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list.at(0).at("state").as_string(), "Missing");
  EXPECT_EQ(list.at(0).at("missing").as_string(), "deployment");
  EXPECT_FALSE(list.at(0).has_field("running"));
  EXPECT_EQ(list.at(3).at("environment").as_string(), "prod");
  EXPECT_EQ(list.at(3).at("namespace").as_string(), "shop-prod");
  EXPECT_EQ(list.at(3).at("spec").as_string(), kPinned);
  EXPECT_EQ(list.at(3).at("running").as_string(), "registry.example/api:2.0");
  EXPECT_EQ(list.at(3).at("state").as_string(), "Differs");
}

}  // namespace
}  // namespace rollgate::cli
