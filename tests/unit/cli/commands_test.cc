#include "controller/cli/commands.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>

#include "controller/api/codec.h"
#include "controller/cli/tree.h"
#include "tests/fakes/unimplemented_client.h"
#include "tests/unit/cli/golden.h"

namespace rollgate::cli {
namespace {

using testing::CliJson;

// Rollouts by name in one namespace; Watch replays scripted sessions, one per call.
class FakeClient : public testing::UnimplementedClient {
 public:
  struct Session {
    std::vector<kube::WatchEvent> events;
    Status end;                          // what Watch returns after the events
    std::chrono::milliseconds delay{0};  // before the events
  };

  Result<kube::Json> Get(const kube::ResourceType& rt, const std::string& ns,
                         const std::string& name) override {
    const std::lock_guard<std::mutex> lock(mu);
    gets.push_back(rt.resource + " " + ns + "/" + name);
    if (rt.resource == "containerrollouts" && rollout && ns == "shop" &&
        kube::MetaString(*rollout, "name") == name) {
      return *rollout;
    }
    if (rt.resource == "containerrollouts" && get_error) return *get_error;
    return Status(StatusCode::kNotFound,
                  "get " + rt.resource + " " + ns + "/" + name + ": \"" + name + "\" not found");
  }
  Result<kube::ObjectList> List(const kube::ResourceType&, const std::string& ns,
                                const kube::ListOptions&) override {
    const std::lock_guard<std::mutex> lock(mu);
    listed_ns = ns;
    if (get_error) return *get_error;
    kube::ObjectList l;
    if (rollout) l.items.push_back(*rollout);
    return l;
  }
  Result<kube::Json> Patch(const kube::ResourceType&, const std::string& ns,
                           const std::string& name, kube::PatchType, const std::string& body,
                           const kube::PatchOptions&) override {
    const std::lock_guard<std::mutex> lock(mu);
    patches.push_back(ns + "/" + name + " " + body);
    if (get_error) return *get_error;
    return kube::Json::object();
  }
  Status Watch(const kube::ResourceType&, const std::string&, const kube::WatchOptions& opts,
               const std::function<bool(kube::WatchEvent&&)>& on_event,
               const CancelToken& cancel) override {
    Session s;
    {
      const std::lock_guard<std::mutex> lock(mu);
      watches.push_back(opts.field_selector + " rv=" + opts.resource_version);
      if (sessions.empty()) {
        s.end = Status(StatusCode::kCancelled, "no more sessions");
      } else {
        s = std::move(sessions.front());
        sessions.pop_front();
      }
    }
    if (s.end.code() == StatusCode::kCancelled && s.events.empty()) {
      cancel_on_empty->Cancel();
      return s.end;
    }
    cancel.SleepFor(s.delay);
    for (auto& e : s.events) {
      if (cancel.cancelled()) return Status(StatusCode::kCancelled, "cancelled");
      if (!on_event(std::move(e))) return Status::Ok();
    }
    return s.end;
  }

  std::mutex mu;
  std::optional<kube::Json> rollout;
  std::optional<Status> get_error;
  std::vector<std::string> gets;
  std::string listed_ns = "unset";
  std::vector<std::string> patches;
  std::deque<Session> sessions;
  std::vector<std::string> watches;
  CancelToken* cancel_on_empty = nullptr;  // cancelled when the sessions run out
};

struct Captured {
  std::string out;
  std::string err;
  Io io;
  explicit Captured(bool tty = false) {
    io.out = [this](const std::string& s) { out += s; };
    io.err = [this](const std::string& s) { err += s; };
    io.tty = tty;
    io.now = [] { return *api::ParseTime("2026-11-28T10:06:00Z"); };
  }
};

Options Opts(Verb verb, const std::string& name, OutputFormat f = OutputFormat::kDefault) {
  Options o;
  o.verb = verb;
  o.name = name;
  o.output = f;
  o.verb_word = verb == Verb::kPromote ? "promote" : "get";
  return o;
}

kube::Json WithPhase(kube::Json obj, const std::string& phase, const std::string& rv) {
  obj["status"]["phase"] = kube::Json::string(phase);
  obj["metadata"]["resourceVersion"] = kube::Json::string(rv);
  return obj;
}

TEST(CliCommandsTest, GetPrintsTheTreeOrTheObject) {
  FakeClient c;
  c.rollout = CliJson("midflight.json");
  Captured cap;
  EXPECT_EQ(Get(c, Opts(Verb::kGet, "web"), "shop", cap.io), 0);
  EXPECT_EQ(cap.out.rfind("Name:        web\n", 0), 0U) << cap.out;
  EXPECT_EQ(cap.err, "");
  // The target Deployments are read for the tree.
  EXPECT_NE(std::find(c.gets.begin(), c.gets.end(), "deployments shop-prod/api"), c.gets.end());

  for (auto [f, want] : std::vector<std::pair<OutputFormat, std::string>>{
           {OutputFormat::kName, "containerrollout.rollgate.io/web\n"},
           {OutputFormat::kJson, testing::ReadCliTestdata("midflight.out.json")},
           {OutputFormat::kYaml, testing::ReadCliTestdata("midflight.out.yaml")}}) {
    Captured each;
    EXPECT_EQ(Get(c, Opts(Verb::kGet, "web", f), "shop", each.io), 0);
    EXPECT_EQ(each.out, want);
  }
}

TEST(CliCommandsTest, TargetsInAnotherClusterAreNotAskedOfTheHub) {
  FakeClient c;
  auto r = api::DecodeRollout(kube::Json::parse(R"({"metadata":{"namespace":"shop","name":"r"},
    "spec":{"images":{"b":"r/b:1"},"environments":[
      {"name":"dev","targets":[{"deployment":"api","containers":{"api":"b"}}]},
      {"name":"prod","namespace":"shop-prod","cluster":{"secretRef":{"name":"prod-eu"}},
       "targets":[{"deployment":"api","containers":{"api":"b"}}]}]}})"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::map<std::string, std::string> unreadable;
  EXPECT_TRUE(TargetDeployments(c, *r, &unreadable).empty());
  EXPECT_EQ(c.gets, std::vector<std::string>{"deployments shop/api"});
  EXPECT_TRUE(unreadable.empty());
}

TEST(CliCommandsTest, FailuresAreErrorLinesAndExitOne) {
  FakeClient c;
  Captured missing;
  EXPECT_EQ(Get(c, Opts(Verb::kGet, "nope"), "shop", missing.io), 1);
  EXPECT_EQ(missing.out, "");
  EXPECT_EQ(missing.err.rfind("error: NotFound: ", 0), 0U) << missing.err;

  c.get_error = Status(StatusCode::kForbidden, "containerrollouts.rollgate.io is forbidden");
  for (Verb v : {Verb::kList, Verb::kPromote}) {
    Captured cap;
    const int rc = v == Verb::kList ? List(c, Opts(v, ""), "shop", cap.io)
                                    : Annotate(c, Opts(v, "web"), "shop", cap.io);
    EXPECT_EQ(rc, 1);
    EXPECT_EQ(cap.err, "error: Forbidden: containerrollouts.rollgate.io is forbidden\n");
  }
  c.get_error = Status(StatusCode::kTransport, "connection refused");
  Captured unreachable;
  EXPECT_EQ(Get(c, Opts(Verb::kGet, "web"), "shop", unreachable.io), 1);
  EXPECT_EQ(unreachable.err, "error: Transport: connection refused\n");
}

TEST(CliCommandsTest, ListAndPromote) {
  FakeClient c;
  Captured empty;
  EXPECT_EQ(List(c, Opts(Verb::kList, ""), "shop", empty.io), 0);
  EXPECT_EQ(empty.err, "No resources found in shop namespace.\n");
  c.rollout = CliJson("midflight.json");
  Captured all;
  EXPECT_EQ(List(c, Opts(Verb::kList, "", OutputFormat::kName), "", all.io), 0);
  EXPECT_EQ(c.listed_ns, "");
  EXPECT_EQ(all.out, "containerrollout.rollgate.io/web\n");
  Captured promote;
  EXPECT_EQ(Annotate(c, Opts(Verb::kPromote, "web"), "shop", promote.io), 0);
  ASSERT_EQ(c.patches.size(), 1U);
  EXPECT_EQ(
      c.patches[0].rfind(R"(shop/web {"metadata":{"annotations":{"rollgate.io/promote":")", 0), 0U)
      << c.patches[0];
  EXPECT_EQ(promote.out.rfind("promote requested for shop/web (rollgate.io/promote=", 0), 0U);
}

TEST(CliCommandsTest, WatchFollowsTheRolloutUntilDoneAndResumes) {
  FakeClient c;
  const kube::Json base = CliJson("approval.json");
  c.rollout = base;
  // 1: a change, then the server ends the stream (resume from rv 2003);
  // 2: 410 Gone (read again); 3: the rollout succeeds.
  c.sessions.push_back(
      {{{kube::WatchEvent::Type::kModified, WithPhase(base, "Progressing", "2003")}},
       Status::Ok()});
  c.sessions.push_back({{}, Status(StatusCode::kGone, "too old")});
  c.sessions.push_back({{{kube::WatchEvent::Type::kBookmark, WithPhase(base, "", "2005")},
                         {kube::WatchEvent::Type::kModified, WithPhase(base, "Succeeded", "2006")}},
                        Status::Ok()});
  CancelToken cancel;
  c.cancel_on_empty = &cancel;
  Options o = Opts(Verb::kGet, "web");
  o.watch = true;
  o.until_done = true;
  Captured cap;
  EXPECT_EQ(Watch(c, o, "shop", cap.io, cancel), 0) << cap.err;
  EXPECT_EQ(c.watches,
            (std::vector<std::string>{"metadata.name=web rv=2002", "metadata.name=web rv=2003",
                                      "metadata.name=web rv=2002"}));
  // Piped: each different tree appended; the last one Succeeded.
  EXPECT_NE(cap.out.find("Phase:       ‖ AwaitingApproval"), std::string::npos) << cap.out;
  EXPECT_NE(cap.out.find("Phase:       ◌ Progressing"), std::string::npos) << cap.out;
  EXPECT_NE(cap.out.find("Phase:       ✔ Succeeded"), std::string::npos) << cap.out;
  EXPECT_EQ(cap.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(cap.err, "");
}

TEST(CliCommandsTest, WatchEndsOnFailureDeletionAndCancel) {
  const kube::Json base = CliJson("approval.json");
  {
    FakeClient c;
    c.rollout = base;
    c.sessions.push_back(
        {{{kube::WatchEvent::Type::kModified, WithPhase(base, "RolledBack", "2003")}},
         Status::Ok()});
    CancelToken cancel;
    c.cancel_on_empty = &cancel;
    Options o = Opts(Verb::kGet, "web");
    o.watch = o.until_done = true;
    Captured cap(/*tty=*/true);
    EXPECT_EQ(Watch(c, o, "shop", cap.io, cancel), 1);
    EXPECT_EQ(cap.err, "error: the rollout ended RolledBack\n");
    EXPECT_NE(cap.out.find("\x1b[2K"), std::string::npos);  // drawn in place
  }
  {
    FakeClient c;
    c.rollout = base;
    c.sessions.push_back({{{kube::WatchEvent::Type::kDeleted, base}}, Status::Ok()});
    CancelToken cancel;
    c.cancel_on_empty = &cancel;
    Options o = Opts(Verb::kGet, "web");
    o.watch = true;
    Captured cap;
    EXPECT_EQ(Watch(c, o, "shop", cap.io, cancel), 1);
    EXPECT_EQ(cap.err, "error: the rollout shop/web was deleted\n");
  }
  {
    FakeClient c;  // the sessions run out: the fake cancels, as Ctrl-C would
    c.rollout = base;
    CancelToken cancel;
    c.cancel_on_empty = &cancel;
    Options o = Opts(Verb::kGet, "web");
    o.watch = true;
    Captured cap;
    EXPECT_EQ(Watch(c, o, "shop", cap.io, cancel), 0);
    EXPECT_EQ(cap.err, "");
  }
  {
    FakeClient c;  // no such rollout
    CancelToken cancel;
    Options o = Opts(Verb::kGet, "nope");
    o.watch = true;
    Captured cap;
    EXPECT_EQ(Watch(c, o, "shop", cap.io, cancel), 1);
    EXPECT_EQ(cap.err.rfind("error: NotFound: ", 0), 0U);
  }
}

// On a terminal every line of every frame is cut to the width asked for that frame (a resize is
// honoured), so that none wraps and the cursor-up over the last frame stays right; piped, nothing
// is cut.
TEST(CliCommandsTest, WatchOnATerminalCutsLinesToItsWidth) {
  const kube::Json base = CliJson("approval.json");
  FakeClient c;
  c.rollout = base;
  // The first frame, then (once the drawing thread has drawn it) the terminal state.
  c.sessions.push_back({{{kube::WatchEvent::Type::kModified, WithPhase(base, "Succeeded", "2003")}},
                        Status::Ok(),
                        std::chrono::milliseconds(300)});
  CancelToken cancel;
  c.cancel_on_empty = &cancel;
  Options o = Opts(Verb::kGet, "web");
  o.watch = o.until_done = true;
  Captured cap(/*tty=*/true);
  cap.io.color = true;
  std::vector<int> widths;  // one per frame: 24, then the terminal is made narrower
  cap.io.columns = [&widths] {
    widths.push_back(widths.empty() ? 24 : 16);
    return widths.back();
  };
  EXPECT_EQ(Watch(c, o, "shop", cap.io, cancel), 0) << cap.err;
  ASSERT_GE(widths.size(), 2U) << cap.out;  // the second at the new width
  // The frames: each ends with "ESC[J"; their lines start with "ESC[2K".
  std::vector<std::string> frames;
  for (std::size_t from = 0, at; (at = cap.out.find("\x1b[J", from)) != std::string::npos;
       from = at + 3) {
    frames.push_back(cap.out.substr(from, at - from));
  }
  ASSERT_EQ(frames.size(), widths.size()) << cap.out;
  bool cut = false;
  for (std::size_t f = 0; f < frames.size(); ++f) {
    std::size_t lines = 0;
    for (std::size_t from = 0, at; (at = frames[f].find('\n', from)) != std::string::npos;
         from = at + 1, ++lines) {
      const std::string line = frames[f].substr(from, at - from);
      EXPECT_LE(DisplayWidth(line), widths[f]) << "frame " << f << ": " << line;
      if (line.find("…") != std::string::npos) cut = true;
      // A line cut inside a colour ends with a reset.
      if (line.find("…\x1b[") != std::string::npos) {
        EXPECT_EQ(line.substr(line.size() - 4), "\x1b[0m") << line;
      }
    }
    EXPECT_GT(lines, 5U) << frames[f];
  }
  EXPECT_TRUE(cut) << cap.out;
  EXPECT_NE(frames.back().find("Phase:"), std::string::npos) << frames.back();

  // Piped: the same rollout's lines whole, whatever the width.
  FakeClient piped_client;
  piped_client.rollout = WithPhase(base, "Succeeded", "2003");
  CancelToken piped_cancel;
  piped_client.cancel_on_empty = &piped_cancel;
  Captured piped;
  piped.io.columns = [] { return 16; };
  EXPECT_EQ(Watch(piped_client, o, "shop", piped.io, piped_cancel), 0) << piped.err;
  EXPECT_EQ(piped.out.find("…"), std::string::npos) << piped.out;
  EXPECT_NE(piped.out.find("Phase:       ✔ Succeeded\n"), std::string::npos) << piped.out;
}

}  // namespace
}  // namespace rollgate::cli
