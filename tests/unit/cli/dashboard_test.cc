#include "controller/cli/dashboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "controller/api/codec.h"
#include "controller/cli/dashboard_assets.h"
#include "tests/unit/cli/golden.h"

namespace rollgate::cli {
namespace {

using testing::CliJson;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";
constexpr int kPort = 3100;
constexpr char kCookie[] = "rollgate_dashboard_3100=0123456789abcdef0123456789abcdef";

api::Rollout Decode(const std::string& file) {
  auto r = api::DecodeRollout(CliJson(file));
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : api::Rollout{};
}

class DashboardTest : public ::testing::Test {
 protected:
  DashboardTest() {
    store.Replace({Decode("approval.json"), Decode("failed.json")});
    auto d = api::DecodeDeployment(CliJson("deployment-prod-api.json"));
    EXPECT_TRUE(d.ok());
    if (d.ok()) store.SetDeployments("shop/web", {*d});
    DashboardConfig cfg;
    cfg.token = kToken;
    cfg.port = kPort;
    cfg.program = "kubectl rollgate";
    // The golden trees' time (tests/unit/cli/tree_test.cc).
    cfg.now = [] { return api::ParseTime("2026-11-28T10:06:00Z").value(); };
    cfg.act = [this](const std::string& ns, const std::string& name,
                     const std::string& verb) -> Result<std::string> {
      acts.push_back(ns + "/" + name + " " + verb);
      if (name == "missing") return Status(StatusCode::kNotFound, "rollout not found");
      return std::string("2026-11-20T10:05:00Z/1");
    };
    dash = std::make_unique<Dashboard>(store, cfg);
  }

  metrics::HttpRequest Req(const std::string& method, const std::string& path,
                           const std::string& query = "", bool cookie = true) const {
    metrics::HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.headers["host"] = "127.0.0.1:3100";
    if (cookie) r.headers["cookie"] = std::string("other=1; ") + kCookie;
    return r;
  }
  static std::string Header(const metrics::HttpResponse& r, const std::string& name) {
    for (const auto& h : r.headers) {
      if (h.first == name) return h.second;
    }
    return "";
  }

  RolloutStore store;
  std::vector<std::string> acts;
  std::unique_ptr<Dashboard> dash;
};

TEST_F(DashboardTest, TheTokenBecomesAStrictHttpOnlyCookieAndLeavesTheAddress) {
  auto r = dash->Handle(Req("GET", "/", std::string("token=") + kToken, false));
  EXPECT_EQ(r.code, 303);
  EXPECT_EQ(Header(r, "Location"), "/");
  EXPECT_EQ(Header(r, "Set-Cookie"), std::string(kCookie) + "; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_EQ(Header(r, "Referrer-Policy"), "no-referrer");
  // A wrong token, or none, gets no page and no cookie.
  r = dash->Handle(Req("GET", "/", "token=ffff", false));
  EXPECT_EQ(r.code, 401);
  EXPECT_EQ(Header(r, "Set-Cookie"), "");
  EXPECT_EQ(dash->Handle(Req("GET", "/", "", false)).code, 401);
  // With the cookie: the page.
  r = dash->Handle(Req("GET", "/"));
  EXPECT_EQ(r.code, 200);
  EXPECT_THAT(r.body, HasSubstr("<script src=\"/app.js\""));
  EXPECT_THAT(Header(r, "Content-Security-Policy"), HasSubstr("script-src 'self'"));
}

TEST_F(DashboardTest, TheApiNeedsTheCookieAndTheRightHost) {
  EXPECT_EQ(dash->Handle(Req("GET", "/api/rollouts", "", false)).code, 401);
  auto wrong_cookie = Req("GET", "/api/rollouts", "", false);
  wrong_cookie.headers["cookie"] = "rollgate_dashboard_3100=0123456789abcdef0123456789abcdee";
  EXPECT_EQ(dash->Handle(wrong_cookie).code, 401);
  // Another dashboard's cookie (another port) does not count.
  auto other_port = Req("GET", "/api/rollouts", "", false);
  other_port.headers["cookie"] = std::string("rollgate_dashboard_3101=") + kToken;
  EXPECT_EQ(dash->Handle(other_port).code, 401);
  // DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends its own Host.
  auto rebound = Req("GET", "/api/rollouts");
  rebound.headers["host"] = "evil.example:3100";
  EXPECT_EQ(dash->Handle(rebound).code, 403);
  rebound.headers["host"] = "127.0.0.1:3101";
  EXPECT_EQ(dash->Handle(rebound).code, 403);
  auto local = Req("GET", "/api/rollouts");
  local.headers["host"] = "localhost:3100";
  EXPECT_EQ(dash->Handle(local).code, 200);
  // The static files carry no data: served without the cookie.
  EXPECT_EQ(dash->Handle(Req("GET", "/app.js", "", false)).code, 200);
  EXPECT_EQ(dash->Handle(Req("GET", "/nothing.js", "", false)).code, 404);
}

TEST_F(DashboardTest, ListAndDetailJson) {
  auto r = dash->Handle(Req("GET", "/api/rollouts"));
  ASSERT_EQ(r.code, 200);
  const auto list = web::json::value::parse(r.body);
  EXPECT_TRUE(list.at("synced").as_bool());
  ASSERT_EQ(list.at("rollouts").size(), 2U);
  const auto& first = list.at("rollouts").at(0);  // by namespace: ml/trainer, then shop/web
  EXPECT_EQ(first.at("namespace").as_string(), "ml");
  EXPECT_EQ(first.at("name").as_string(), "trainer");
  EXPECT_GT(first.at("environments").size(), 0U);

  const api::Rollout approval = Decode("approval.json");
  r = dash->Handle(Req("GET", "/api/rollouts/" + approval.namespace_ + "/" + approval.name));
  ASSERT_EQ(r.code, 200);
  const auto d = web::json::value::parse(r.body);
  EXPECT_EQ(d.at("phase").as_string(), api::PhaseName(approval.status.phase));
  EXPECT_TRUE(d.at("actions").at("promote").as_bool());
  EXPECT_TRUE(d.at("actions").at("abort").as_bool());
  EXPECT_FALSE(d.at("actions").at("retry").as_bool());
  EXPECT_THAT(d.at("waiting").as_string(), HasSubstr("approval"));
  // The tree is `rollgate get`'s, without colours.
  std::string tree;
  for (const auto& line : d.at("tree").as_array()) tree += line.as_string() + "\n";
  EXPECT_EQ(tree, testing::ReadCliTestdata("approval.tree.txt"));

  const api::Rollout failed = Decode("failed.json");
  r = dash->Handle(Req("GET", "/api/rollouts/" + failed.namespace_ + "/" + failed.name));
  const auto f = web::json::value::parse(r.body);
  EXPECT_FALSE(f.at("actions").at("promote").as_bool());
  EXPECT_TRUE(f.at("actions").at("retry").as_bool());
  EXPECT_EQ(dash->Handle(Req("GET", "/api/rollouts/shop/nothing")).code, 404);
}

TEST_F(DashboardTest, ActionsAreSameOriginPostsOfTheThreeVerbs) {
  auto post = Req("POST", "/api/rollouts/shop/web/promote");
  post.headers["origin"] = "http://127.0.0.1:3100";
  auto r = dash->Handle(post);
  EXPECT_EQ(r.code, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("promote requested for shop/web"));
  ASSERT_EQ(acts.size(), 1U);
  EXPECT_EQ(acts[0], "shop/web promote");
  // Cross-origin or without an Origin: refused before anything is sent.
  post.headers["origin"] = "http://evil.example";
  EXPECT_EQ(dash->Handle(post).code, 403);
  post.headers.erase("origin");
  EXPECT_EQ(dash->Handle(post).code, 403);
  // No cookie: 401.
  auto anon = Req("POST", "/api/rollouts/shop/web/abort", "", false);
  anon.headers["origin"] = "http://127.0.0.1:3100";
  EXPECT_EQ(dash->Handle(anon).code, 401);
  // Not a verb of ours.
  auto bad = Req("POST", "/api/rollouts/shop/web/delete");
  bad.headers["origin"] = "http://127.0.0.1:3100";
  EXPECT_EQ(dash->Handle(bad).code, 404);
  // The API server's answer is passed on.
  auto missing = Req("POST", "/api/rollouts/shop/missing/retry");
  missing.headers["origin"] = "http://127.0.0.1:3100";
  r = dash->Handle(missing);
  EXPECT_EQ(r.code, 404);
  EXPECT_THAT(r.body, HasSubstr("not found"));
  EXPECT_EQ(acts.size(), 2U);  // promote, and the missing retry: nothing else was sent
}

TEST_F(DashboardTest, EventsStreamSendsWhatChangedAndFollowsTheRollout) {
  const api::Rollout approval = Decode("approval.json");
  const std::string key = approval.Key();
  auto r = dash->Handle(
      Req("GET", "/api/events", "rollout=" + approval.namespace_ + "%2F" + approval.name));
  ASSERT_EQ(r.code, 200);
  EXPECT_EQ(r.content_type, "text/event-stream; charset=utf-8");
  ASSERT_TRUE(r.stream);
  EXPECT_EQ(store.Followed(), std::vector<std::string>{key});
  const auto first = r.stream();
  ASSERT_TRUE(first);
  EXPECT_THAT(*first, HasSubstr("retry: 2000"));
  EXPECT_THAT(*first, HasSubstr("event: list\ndata: {"));
  EXPECT_THAT(*first, HasSubstr("event: rollout\ndata: {"));
  // Nothing changed: nothing sent (the keep-alive comes after 15 s).
  EXPECT_EQ(r.stream().value(), "");
  // The rollout changes: only the rollout event and the list's.
  api::Rollout next = approval;
  next.status.phase = api::RolloutPhase::kAborted;
  store.Upsert(next);
  const auto changed = r.stream();
  ASSERT_TRUE(changed);
  EXPECT_THAT(*changed, HasSubstr("\"phase\":\"Aborted\""));
  EXPECT_THAT(*changed, Not(HasSubstr("retry: 2000")));
  // Deleted: the page hears that it is missing.
  store.Remove(key);
  EXPECT_THAT(r.stream().value(), HasSubstr("\"missing\":true"));
  // The stream closed: no longer followed.
  r = metrics::HttpResponse{};
  EXPECT_TRUE(store.Followed().empty());
}

TEST(DashboardStoreTest, ReplaceKeepsDeploymentsOfRolloutsThatRemain) {
  RolloutStore store;
  api::Rollout a;
  a.namespace_ = "ns";
  a.name = "a";
  api::Rollout b = a;
  b.name = "b";
  store.Replace({a, b});
  api::DeploymentView d;
  d.name = "web";
  store.SetDeployments("ns/a", {d});
  store.SetDeployments("ns/zzz", {d});  // unknown: ignored
  store.Replace({a});
  ASSERT_EQ(store.Entries().size(), 1U);
  EXPECT_EQ(store.Find("ns/a")->deployments.size(), 1U);
  EXPECT_FALSE(store.Find("ns/b"));
  store.Follow("ns/a");
  store.Follow("ns/a");
  store.Unfollow("ns/a");
  EXPECT_EQ(store.Followed().size(), 1U);
  store.Unfollow("ns/a");
  EXPECT_TRUE(store.Followed().empty());
}

// The Deployment reader sleeps a second between reads, but a page that opens a rollout wakes it.
TEST(DashboardStoreTest, FollowingANewRolloutWakesTheReader) {
  RolloutStore store;
  std::thread page([&store] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    store.Follow("ns/a");
  });
  const auto start = std::chrono::steady_clock::now();
  store.WaitForFollow(std::chrono::seconds(30));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  page.join();
  // A second page on the same rollout is not news.
  store.Follow("ns/a");
  const auto again = std::chrono::steady_clock::now();
  store.WaitForFollow(std::chrono::milliseconds(200));
  EXPECT_GE(std::chrono::steady_clock::now() - again, std::chrono::milliseconds(190));
}

TEST(DashboardAssetsTest, EveryFileIsEmbeddedWithItsType) {
  std::vector<std::string> paths;
  for (const auto& a : DashboardAssets()) {
    paths.emplace_back(a.path);
    EXPECT_FALSE(a.body.empty()) << a.path;
  }
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("/", "/app.js", "/app.css", "/favicon.svg"));
  for (const auto& a : DashboardAssets()) {
    if (a.path == "/app.js") {
      EXPECT_EQ(a.content_type, "text/javascript; charset=utf-8");
    }
    // Nothing from elsewhere: no CDN, no remote font.
    EXPECT_EQ(std::string(a.body).find("https://"), std::string::npos) << a.path;
  }
}

TEST(DashboardTokenTest, TokensAreRandomHex) {
  const std::string a = NewDashboardToken();
  const std::string b = NewDashboardToken();
  EXPECT_EQ(a.size(), 32U);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace rollgate::cli
