// RestClient over the real cpprest transport against an in-process HTTPS server on loopback with
// generated certificates: TLS (mTLS, wrong CA), authentication and token rotation, error mapping,
// retries, paging, patch types, and watch streaming (line by line, 410, drops, cancellation,
// malformed data).
#include "controller/kube/rest_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "controller/kube/informer.h"
#include "tests/fakes/base64.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/https_server.h"
#include "tests/fakes/test_certs.h"

namespace rollgate::kube {
namespace {

using rollgate::testing::HttpsServer;
using rollgate::testing::Request;
using rollgate::testing::ResponseWriter;
using rollgate::testing::SharedTestPki;
using std::chrono::milliseconds;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rollgate-rest-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::trunc) << content;
    return p;
  }

 private:
  std::string path_;
};

std::string Kubeconfig(const std::string& server, const std::string& ca, const std::string& user) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
         "clusters:\n- name: c\n  cluster:\n    server: " +
         server + "\n    certificate-authority-data: " + testing::Base64Encode(ca) +
         "\ncontexts:\n- name: test\n  context: {cluster: c, user: u, namespace: team}\n"
         "users:\n- name: u\n  user:\n" +
         user;
}

std::string MtlsUser() {
  const auto& pki = SharedTestPki();
  return "    client-certificate-data: " + testing::Base64Encode(pki.client.cert) +
         "\n    client-key-data: " + testing::Base64Encode(pki.client.key) + "\n";
}

std::string StatusJson(int code, const std::string& reason, const std::string& msg) {
  return R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":")" + reason +
         R"(","message":")" + msg + R"(","code":)" + std::to_string(code) + "}";
}

std::string DeploymentJson(const std::string& name, const std::string& rv) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"namespace":"team","name":")" +
         name + R"(","resourceVersion":")" + rv + R"("}})";
}

std::string Event(const std::string& type, const std::string& name, const std::string& rv) {
  return R"({"type":")" + type + R"(","object":)" + DeploymentJson(name, rv) + "}\n";
}

struct Fixture {
  explicit Fixture(rollgate::testing::Handler h, bool mtls = true)
      : server({SharedTestPki().server, mtls ? SharedTestPki().ca.cert : ""}, std::move(h)) {}

  std::unique_ptr<RestClient> Client(const std::string& user, const std::string& ca,
                                     RestClientOptions ro = {}) {
    auto cfg = LoadKubeconfig({dir.Write("config", Kubeconfig(server.url(), ca, user)), ""});
    EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
    if (!ro.sleep) ro.sleep = [this](std::chrono::nanoseconds d) { slept += d; };
    auto c = RestClient::FromConfig(*cfg, clock, ro);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  std::unique_ptr<RestClient> MtlsClient(RestClientOptions ro = {}) {
    return Client(MtlsUser(), SharedTestPki().ca.cert, std::move(ro));
  }

  TempDir dir;
  RealClock clock;
  std::chrono::nanoseconds slept{0};
  HttpsServer server;
};

TEST(RestClientTest, MutualTlsFromKubeconfigData) {
  Fixture f([](const Request& r, ResponseWriter& w) {
    if (r.target_path == "/apis/apps/v1/namespaces/team/deployments/api") {
      w.Respond(200, DeploymentJson("api", "7"));
    } else {
      w.Respond(404, StatusJson(404, "NotFound", "nope"));
    }
  });
  auto c = f.MtlsClient();
  auto d = c->Get(resources::Deployments(), "team", "api");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(MetaString(*d, "resourceVersion"), "7");
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].client_cn, "rollgate-test");
  EXPECT_EQ(reqs[0].headers["user-agent"].rfind("rollgate/", 0), 0u)
      << reqs[0].headers["user-agent"];
  EXPECT_EQ(reqs[0].headers["accept"], "application/json");
}

TEST(RestClientTest, WrongCaIsRefused) {
  Fixture f([](const Request&, ResponseWriter& w) { w.Respond(200, "{}"); });
  auto c = f.Client(MtlsUser(), SharedTestPki().other_ca.cert);
  auto d = c->Get(resources::Deployments(), "team", "api");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kTransport);
  EXPECT_EQ(f.server.request_count(), 0u) << "no request may reach an unverified server";
}

TEST(RestClientTest, MissingClientCertificateIsRefusedByMtlsServer) {
  Fixture f([](const Request&, ResponseWriter& w) { w.Respond(200, "{}"); });
  auto c = f.Client("    token: abc\n", SharedTestPki().ca.cert);
  auto d = c->Get(resources::Deployments(), "team", "api");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kTransport);
  EXPECT_EQ(f.server.request_count(), 0u);
}

TEST(RestClientTest, BearerTokenIsReReadWhenItsFileRotates) {
  Fixture f(
      [](const Request& r, ResponseWriter& w) {
        if (r.headers.count("authorization") == 0) {
          w.Respond(401, StatusJson(401, "Unauthorized", "Unauthorized"));
        } else {
          w.Respond(200, DeploymentJson("api", "1"));
        }
      },
      /*mtls=*/false);
  const std::string token_path = f.dir.Write("token", "first-token-aaaa\n");
  auto c = f.Client("    tokenFile: " + token_path + "\n", SharedTestPki().ca.cert);
  ASSERT_TRUE(c->Get(resources::Deployments(), "team", "api").ok());
  f.dir.Write("token", "second-token-bbbbbbbb\n");
  ASSERT_TRUE(c->Get(resources::Deployments(), "team", "api").ok());
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer first-token-aaaa");
  EXPECT_EQ(reqs[1].headers["authorization"], "Bearer second-token-bbbbbbbb");
}

TEST(RestClientTest, ApiErrorsBecomeTypedStatuses) {
  Fixture f([](const Request& r, ResponseWriter& w) {
    const std::string& name = r.target_path.substr(r.target_path.rfind('/') + 1);
    if (name == "missing") {
      w.Respond(404, StatusJson(404, "NotFound", R"(deployments.apps \"missing\" not found)"));
    } else if (name == "exists") {
      w.Respond(409, StatusJson(409, "AlreadyExists", "already exists"));
    } else if (name == "forbidden") {
      w.Respond(403, StatusJson(403, "Forbidden", "cannot get"));
    } else if (name == "garbage") {
      w.Respond(200, "this is not json", "text/plain");
    } else if (name == "truncated") {
      w.Respond(200, R"({"metadata":{"name":"tr)");
    } else if (name == "html") {
      w.Respond(502, "<html>bad gateway</html>", "text/html");
    } else {
      w.Respond(500, StatusJson(500, "InternalError", "boom"));
    }
  });
  auto c = f.MtlsClient();
  const auto rt = resources::Deployments();
  EXPECT_EQ(c->Get(rt, "team", "missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c->Get(rt, "team", "missing").status().message(),
            "get deployments.apps team/missing: deployments.apps \"missing\" not found");
  EXPECT_EQ(c->Get(rt, "team", "exists").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(c->Get(rt, "team", "forbidden").status().code(), StatusCode::kForbidden);
  EXPECT_EQ(c->Get(rt, "team", "garbage").status().code(), StatusCode::kMalformed);
  EXPECT_EQ(c->Get(rt, "team", "truncated").status().code(), StatusCode::kMalformed);
  auto html = c->Get(rt, "team", "html");
  EXPECT_EQ(html.status().code(), StatusCode::kInternal);
  EXPECT_NE(html.status().message().find("HTTP 502"), std::string::npos);
  EXPECT_EQ(c->Get(rt, "team", "other").status().code(), StatusCode::kInternal);
}

TEST(RestClientTest, TooManyRequestsHonoursRetryAfter) {
  std::atomic<int> calls{0};
  Fixture f([&](const Request&, ResponseWriter& w) {
    if (calls++ < 2) {
      w.Respond(429, StatusJson(429, "TooManyRequests", "slow down"), "application/json",
                {{"Retry-After", "2"}});
    } else {
      w.Respond(200, DeploymentJson("api", "1"));
    }
  });
  auto c = f.MtlsClient();
  auto d = c->Get(resources::Deployments(), "team", "api");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(f.slept, std::chrono::seconds(4));

  calls = -100;  // always 429 now
  auto e = c->Get(resources::Deployments(), "team", "api");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kTooManyRequests);
  ASSERT_TRUE(e.status().retry_after().has_value());
  EXPECT_EQ(*e.status().retry_after(), std::chrono::seconds(2));
}

TEST(RestClientTest, ListAllFollowsContinueTokensWithSelectors) {
  Fixture f([](const Request& r, ResponseWriter& w) {
    auto q = r.query;
    std::string cont = q.count("continue") ? q["continue"] : "";
    if (cont.empty()) {
      w.Respond(
          200,
          R"({"kind":"DeploymentList","metadata":{"resourceVersion":"50","continue":"p 2"},"items":[)" +
              DeploymentJson("a", "1") + "," + DeploymentJson("b", "2") + "]}");
    } else {
      w.Respond(200, R"({"kind":"DeploymentList","metadata":{"resourceVersion":"50"},"items":[)" +
                         DeploymentJson("c", "3") + "]}");
    }
  });
  auto c = f.MtlsClient();
  ListOptions lo;
  lo.limit = 2;
  lo.label_selector = "app in (api,worker),tier!=db";
  lo.field_selector = "metadata.name=a";
  auto all = ListAll(*c, resources::Deployments(), "team", lo);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->items.size(), 3u);
  EXPECT_EQ(all->resource_version, "50");
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].query["labelSelector"], "app in (api,worker),tier!=db");
  EXPECT_EQ(reqs[0].query["fieldSelector"], "metadata.name=a");
  EXPECT_EQ(reqs[0].query["limit"], "2");
  EXPECT_EQ(reqs[1].query["continue"], "p 2");
}

// Pages are handed over as they arrive; a continue token that expired (410) makes the list start
// over once, unpaged, and the pages handed before are to be forgotten (ListAll returns no
// duplicates).
TEST(RestClientTest, ListPagedHandsEachPageAndStartsOverOnAnExpiredContinueToken) {
  Fixture f([](const Request& r, ResponseWriter& w) {
    auto q = r.query;
    if (q.count("continue") != 0) {
      w.Respond(410, StatusJson(410, "Expired", "The provided continue parameter is too old"));
    } else if (q.count("limit") != 0) {
      w.Respond(
          200,
          R"({"kind":"DeploymentList","metadata":{"resourceVersion":"50","continue":"p 2"},"items":[)" +
              DeploymentJson("a", "1") + "," + DeploymentJson("b", "2") + "]}");
    } else {
      w.Respond(200, R"({"kind":"DeploymentList","metadata":{"resourceVersion":"60"},"items":[)" +
                         DeploymentJson("a", "1") + "," + DeploymentJson("b", "2") + "," +
                         DeploymentJson("c", "3") + "]}");
    }
  });
  auto c = f.MtlsClient();
  ListOptions lo;
  lo.limit = 2;
  std::vector<std::string> seen;
  auto rv = ListPaged(
      *c, resources::Deployments(), "team", lo,
      [&seen](std::vector<Json>& items) {
        std::string page = "page";
        for (const auto& i : items) page += " " + MetaString(i, "name");
        seen.push_back(page);
      },
      [&seen] { seen.emplace_back("restart"); });
  ASSERT_TRUE(rv.ok()) << rv.status().ToString();
  EXPECT_EQ(*rv, "60");
  EXPECT_EQ(seen, (std::vector<std::string>{"page a b", "restart", "page a b c"}));
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].query.count("limit"), 0u) << "started over without paging hints";

  auto all = ListAll(*c, resources::Deployments(), "team", lo);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->items.size(), 3u) << "what the expired pages held is not kept twice";
  EXPECT_EQ(all->resource_version, "60");
}

TEST(RestClientTest, ListWithoutItemsIsMalformed) {
  Fixture f([](const Request&, ResponseWriter& w) { w.Respond(200, R"({"kind":"List"})"); });
  auto c = f.MtlsClient();
  EXPECT_EQ(c->List(resources::Pods(), "", {}).status().code(), StatusCode::kMalformed);
}

TEST(RestClientTest, PatchTypesSendTheirContentTypes) {
  Fixture f([](const Request&, ResponseWriter& w) { w.Respond(200, DeploymentJson("api", "2")); });
  auto c = f.MtlsClient();
  const auto rt = resources::Deployments();
  ASSERT_TRUE(c->Patch(rt, "team", "api", PatchType::kMerge, R"({"a":1})", {}).ok());
  ASSERT_TRUE(c->Patch(rt, "team", "api", PatchType::kStrategicMerge, R"({"a":1})", {}).ok());
  ASSERT_TRUE(c->Patch(rt, "team", "api", PatchType::kJsonPatch, R"([])", {}).ok());
  PatchOptions apply;
  apply.field_manager = "rollgate";
  apply.force = true;
  apply.subresource = "status";
  ASSERT_TRUE(c->Patch(rt, "team", "api", PatchType::kApply, "{}", apply).ok());
  EXPECT_EQ(c->Patch(rt, "team", "api", PatchType::kApply, "{}", {}).status().code(),
            StatusCode::kInvalidArgument);
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "PATCH");
  EXPECT_EQ(reqs[0].headers["content-type"], "application/merge-patch+json");
  EXPECT_EQ(reqs[0].body, R"({"a":1})");
  EXPECT_EQ(reqs[1].headers["content-type"], "application/strategic-merge-patch+json");
  EXPECT_EQ(reqs[2].headers["content-type"], "application/json-patch+json");
  EXPECT_EQ(reqs[3].headers["content-type"], "application/apply-patch+yaml");
  EXPECT_EQ(reqs[3].target_path, "/apis/apps/v1/namespaces/team/deployments/api/status");
  EXPECT_EQ(reqs[3].query["fieldManager"], "rollgate");
  EXPECT_EQ(reqs[3].query["force"], "true");
}

TEST(RestClientTest, CreateUpdateStatusAndDelete) {
  Fixture f([](const Request& r, ResponseWriter& w) {
    if (r.method == "DELETE") {
      w.Respond(200, StatusJson(200, "", "deleted"));
    } else {
      w.Respond(r.method == "POST" ? 201 : 200, r.body);
    }
  });
  auto c = f.MtlsClient();
  const auto rt = resources::ContainerRollouts();
  auto obj = Json::parse(DeploymentJson("r1", "3"));
  ASSERT_TRUE(c->Create(rt, "team", obj).ok());
  ASSERT_TRUE(c->Update(rt, "team", obj).ok());
  ASSERT_TRUE(c->UpdateStatus(rt, "team", obj).ok());
  DeleteOptions del;
  del.propagation_policy = "Foreground";
  del.precondition_uid = "u-1";
  ASSERT_TRUE(c->Delete(rt, "team", "r1", del).ok());
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target_path, "/apis/rollgate.io/v1alpha1/namespaces/team/containerrollouts");
  EXPECT_EQ(reqs[0].headers["content-type"], "application/json");
  EXPECT_EQ(reqs[1].method, "PUT");
  EXPECT_EQ(reqs[1].target_path, "/apis/rollgate.io/v1alpha1/namespaces/team/containerrollouts/r1");
  EXPECT_EQ(reqs[2].target_path,
            "/apis/rollgate.io/v1alpha1/namespaces/team/containerrollouts/r1/status");
  auto body = Json::parse(reqs[3].body);
  EXPECT_EQ(body.at("propagationPolicy").as_string(), "Foreground");
  EXPECT_EQ(body.at("preconditions").at("uid").as_string(), "u-1");
}

TEST(RestClientTest, ClientSideLimiterSpacesRequests) {
  Fixture f([](const Request&, ResponseWriter& w) { w.Respond(200, DeploymentJson("a", "1")); });
  rollgate::testing::FakeClock fake;
  RestClientOptions ro;
  ro.qps = 10;
  ro.burst = 1;
  std::chrono::nanoseconds slept{0};
  ro.sleep = [&](std::chrono::nanoseconds d) { slept += d; };
  auto cfg = LoadKubeconfig(
      {f.dir.Write("config", Kubeconfig(f.server.url(), SharedTestPki().ca.cert, MtlsUser())), ""});
  ASSERT_TRUE(cfg.ok());
  auto c = RestClient::FromConfig(*cfg, fake, ro);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*c)->Get(resources::Deployments(), "t", "a").ok());
  // The first request uses the burst; the next two wait 100 ms and 200 ms (clock frozen).
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(slept), milliseconds(300));
}

TEST(RestClientTest, ObserverSeesVerbAndCode) {
  Fixture f(
      [](const Request&, ResponseWriter& w) { w.Respond(404, StatusJson(404, "NotFound", "x")); });
  std::vector<std::pair<std::string, int>> seen;
  RestClientOptions ro;
  ro.observe = [&](const std::string& verb, int code, std::chrono::nanoseconds) {
    seen.emplace_back(verb, code);
  };
  auto c = f.MtlsClient(ro);
  (void)c->Get(resources::Pods(), "t", "p");
  (void)c->List(resources::Pods(), "t", {});
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<std::string, int>{"get", 404}));
  EXPECT_EQ(seen[1], (std::pair<std::string, int>{"list", 404}));
}

// A server that drips its response, one byte every 100 ms: every byte restarts an inactivity timer,
// so only a total deadline ends the request. Three failures stay apart: refused and reset
// connections are kTransport, a response that does not complete in time is kTimeout.
TEST(RestClientTest, ADrippingResponseIsCutAtTheTotalDeadline) {
  std::atomic<bool> stop{false};
  Fixture f([&](const Request&, ResponseWriter& w) {
    if (!w.WriteRaw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100000\r\n\r\n{")) {
      return;
    }
    while (!stop.load() && w.WriteRaw(" ")) std::this_thread::sleep_for(milliseconds(100));
  });
  RestClientOptions ro;
  ro.request_timeout = milliseconds(800);
  auto c = f.MtlsClient(ro);
  const auto start = std::chrono::steady_clock::now();
  auto r = c->Get(resources::Deployments(), "team", "api");
  const auto took = std::chrono::steady_clock::now() - start;
  stop.store(true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no complete response within 800ms"), std::string::npos)
      << r.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(5)) << "the drip must not extend the request";
}

// ---- Watch ----

TEST(RestClientWatchTest, SlowChunkedWatchDeliversEachLineAsItArrives) {
  std::mutex mu;
  std::condition_variable cv;
  int delivered = 0;
  std::atomic<bool> server_saw_delivery{true};
  Fixture f([&](const Request& r, ResponseWriter& w) {
    EXPECT_EQ(r.query.at("watch"), "true");
    EXPECT_EQ(r.query.at("allowWatchBookmarks"), "true");
    EXPECT_EQ(r.query.at("resourceVersion"), "10");
    EXPECT_EQ(r.query.at("timeoutSeconds"), "300");
    w.StartChunked(200);
    for (int i = 1; i <= 3; ++i) {
      // Send one event; do not send the next until the client has handed this one over. A client
      // that buffered the body would never see it, and this wait would time out.
      ASSERT_TRUE(w.WriteChunk(Event("ADDED", "d" + std::to_string(i), std::to_string(10 + i))));
      std::unique_lock<std::mutex> l(mu);
      if (!cv.wait_for(l, std::chrono::seconds(5), [&] { return delivered >= i; })) {
        server_saw_delivery = false;
        break;
      }
    }
    w.EndChunked();
  });
  auto c = f.MtlsClient();
  WatchOptions wo;
  wo.resource_version = "10";
  std::vector<std::string> names;
  CancelToken cancel;
  Status st = c->Watch(
      resources::Deployments(), "team", wo,
      [&](WatchEvent&& ev) {
        EXPECT_EQ(ev.type, WatchEvent::Type::kAdded);
        names.push_back(MetaString(ev.object, "name"));
        std::lock_guard<std::mutex> l(mu);
        ++delivered;
        cv.notify_all();
        return true;
      },
      cancel);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(server_saw_delivery.load());
  EXPECT_EQ(names, (std::vector<std::string>{"d1", "d2", "d3"}));
}

TEST(RestClientWatchTest, ExpiredResourceVersionIsGone) {
  Fixture f([](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    (void)w.WriteChunk(R"({"type":"ERROR","object":)" +
                       StatusJson(410, "Expired", "too old resource version: 1 (99)") + "}\n");
    w.EndChunked();
  });
  auto c = f.MtlsClient();
  CancelToken cancel;
  Status st = c->Watch(
      resources::Pods(), "", {}, [](WatchEvent&&) { return true; }, cancel);
  EXPECT_EQ(st.code(), StatusCode::kGone) << st.ToString();
}

TEST(RestClientWatchTest, HttpErrorStatusOnWatch) {
  Fixture f([](const Request&, ResponseWriter& w) {
    w.Respond(403, StatusJson(403, "Forbidden", "pods is forbidden"));
  });
  auto c = f.MtlsClient();
  CancelToken cancel;
  Status st = c->Watch(
      resources::Pods(), "", {}, [](WatchEvent&&) { return true; }, cancel);
  EXPECT_EQ(st.code(), StatusCode::kForbidden);
}

TEST(RestClientWatchTest, DroppedConnectionIsAnErrorAfterDeliveredEvents) {
  Fixture f([](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    (void)w.WriteChunk(Event("MODIFIED", "a", "21"));
    std::this_thread::sleep_for(milliseconds(50));
    w.Abort();
  });
  auto c = f.MtlsClient();
  CancelToken cancel;
  std::vector<std::string> rvs;
  Status st = c->Watch(
      resources::Deployments(), "team", {},
      [&](WatchEvent&& ev) {
        rvs.push_back(MetaString(ev.object, "resourceVersion"));
        return true;
      },
      cancel);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kTransport) << st.ToString();
  EXPECT_EQ(rvs, std::vector<std::string>{"21"});
}

// A frozen connection: the server sends one event, then nothing, and never closes (a half-open
// TCP connection or a stuck proxy looks the same to the client). With a progress bound the watch
// ends with kTimeout soon after it, not when the server's timeoutSeconds would have passed.
TEST(RestClientWatchTest, AFrozenWatchEndsAtTheProgressBound) {
  std::atomic<bool> release{false};
  Fixture f([&](const Request& r, ResponseWriter& w) {
    EXPECT_EQ(r.query.at("timeoutSeconds"), "300");
    w.StartChunked(200);
    (void)w.WriteChunk(Event("MODIFIED", "a", "21"));
    while (!release.load()) std::this_thread::sleep_for(milliseconds(10));
  });
  auto c = f.MtlsClient();
  CancelToken cancel;
  WatchOptions wo;
  wo.progress_timeout = std::chrono::seconds(1);
  std::vector<std::string> rvs;
  const auto start = std::chrono::steady_clock::now();
  Status st = c->Watch(
      resources::Deployments(), "team", wo,
      [&](WatchEvent&& ev) {
        rvs.push_back(MetaString(ev.object, "resourceVersion"));
        return true;
      },
      cancel);
  const auto took = std::chrono::steady_clock::now() - start;
  release.store(true);
  EXPECT_EQ(st.code(), StatusCode::kTimeout) << st.ToString();
  EXPECT_EQ(rvs, std::vector<std::string>{"21"});
  EXPECT_LT(took, std::chrono::seconds(10))
      << "ended by the 1 s bound, not the 300 s server timeout";
}

TEST(RestClientWatchTest, MalformedLinesAreErrorsNotCrashes) {
  for (const std::string& bad :
       {std::string("not json at all\n"), std::string("{\"type\":\"ADDED\"}\n"),
        std::string("{\"type\":\"WHAT\",\"object\":{}}\n"), std::string("[1,2,3]\n")}) {
    Fixture f([&](const Request&, ResponseWriter& w) {
      w.StartChunked(200);
      (void)w.WriteChunk(bad);
      // Keep the stream open: the client must close it on its own.
      for (int i = 0; i < 100 && !w.client_gone() && !w.stopping(); ++i) {
        if (!w.WriteChunk("\n")) break;
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
    auto c = f.MtlsClient();
    CancelToken cancel;
    Status st = c->Watch(
        resources::Pods(), "", {}, [](WatchEvent&&) { return true; }, cancel);
    EXPECT_EQ(st.code(), StatusCode::kMalformed) << bad << " -> " << st.ToString();
  }
}

TEST(RestClientWatchTest, TruncatedRawResponseIsATransportErrorNotAHang) {
  Fixture f([](const Request&, ResponseWriter& w) {
    (void)w.WriteRaw(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        "500\r\n\r\n{\"type\":");
    w.Close();
  });
  auto c = f.MtlsClient();
  CancelToken cancel;
  const auto start = std::chrono::steady_clock::now();
  Status st = c->Watch(
      resources::Pods(), "", {}, [](WatchEvent&&) { return true; }, cancel);
  EXPECT_FALSE(st.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RestClientWatchTest, CancellationReturnsPromptly) {
  Fixture f([](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    while (!w.stopping() && !w.client_gone()) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  auto c = f.MtlsClient();
  CancelToken cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(200));
    cancel.Cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  Status st = c->Watch(
      resources::Pods(), "", {}, [](WatchEvent&&) { return true; }, cancel);
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  EXPECT_EQ(st.code(), StatusCode::kCancelled) << st.ToString();
  EXPECT_LT(took, milliseconds(1200)) << "cancel must end a quiet watch within a second";
}

// The informer over the real transport: a dropped watch resumes from the last resourceVersion,
// a 410 makes it list again.
TEST(RestClientWatchTest, InformerResumesAfterDropAndRelistsAfterGone) {
  std::mutex mu;
  std::vector<std::string> log;  // "list" or "watch@<rv>"
  Fixture f([&](const Request& r, ResponseWriter& w) {
    const bool watch = r.query.count("watch") != 0;
    int n = 0;
    {
      std::lock_guard<std::mutex> l(mu);
      log.push_back(watch ? "watch@" + r.query.at("resourceVersion") : "list");
      n = static_cast<int>(log.size());
    }
    if (!watch) {
      const std::string rv = n == 1 ? "100" : "300";
      w.Respond(200, R"({"kind":"DeploymentList","metadata":{"resourceVersion":")" + rv +
                         R"("},"items":[)" + DeploymentJson("a", rv) + "]}");
      return;
    }
    w.StartChunked(200);
    if (n == 2) {  // first watch: one event, then the connection drops
      (void)w.WriteChunk(Event("MODIFIED", "a", "150"));
      std::this_thread::sleep_for(milliseconds(30));
      w.Abort();
    } else if (n == 3) {  // second watch: the resourceVersion has expired
      (void)w.WriteChunk(R"({"type":"ERROR","object":)" +
                         StatusJson(410, "Expired", "too old resource version") + "}\n");
      w.EndChunked();
    } else {  // later watches stay open
      while (!w.stopping() && !w.client_gone()) {
        if (!w.WriteChunk(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"300"}}})"
                          "\n")) {
          break;
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    }
  });
  auto c = f.MtlsClient();
  InformerOptions io;
  io.type = resources::Deployments();
  io.namespace_ = "team";
  io.backoff.initial = milliseconds(10);
  Informer inf(*c, io);
  CancelToken cancel;
  std::thread t([&] { inf.Run(cancel); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (log.size() >= 5) break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  cancel.Cancel();
  t.join();
  std::lock_guard<std::mutex> l(mu);
  ASSERT_GE(log.size(), 5u);
  EXPECT_EQ(log[0], "list");
  EXPECT_EQ(log[1], "watch@100");
  EXPECT_EQ(log[2], "watch@150") << "a dropped watch resumes from the last seen version";
  EXPECT_EQ(log[3], "list") << "410 Gone re-lists";
  EXPECT_EQ(log[4], "watch@300");
  ASSERT_NE(inf.Get("team/a"), nullptr);
  EXPECT_EQ(MetaString(*inf.Get("team/a"), "resourceVersion"), "300");
}

// A tenant's kubeconfig for another cluster (ParseRemoteKubeconfig) may name the server's TLS name
// when it differs from the host in `server`: RestClient::FromConfig hands it to the transport,
// which verifies the certificate against it. Without it, the same server is refused.
TEST(RestClientTest, ARemoteKubeconfigsTlsServerNameIsWhatTheCertificateIsVerifiedAgainst) {
  const auto& pki = SharedTestPki();
  HttpsServer server(
      {rollgate::testing::IssueServerCert(pki.ca, "DNS:remote.example"), ""},
      [](const Request&, ResponseWriter& w) { w.Respond(200, DeploymentJson("a", "1")); });
  auto kubeconfig = [&](const std::string& name) {
    std::string k =
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n"
        "  cluster:\n    server: " +
        server.url() + "\n    certificate-authority-data: " + testing::Base64Encode(pki.ca.cert) +
        "\n";
    if (!name.empty()) k += "    tls-server-name: " + name + "\n";
    k += "users:\n- name: u\n  user:\n    token: t0k3n\ncontexts:\n- name: c\n"
         "  context: {cluster: k, user: u}\n";
    return k;
  };
  RealClock clock;
  for (const std::string name : {"remote.example", ""}) {
    SCOPED_TRACE("tls-server-name \"" + name + "\"");
    auto cfg = ParseRemoteKubeconfig(kubeconfig(name), "secret team/prod-eu");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    EXPECT_EQ(cfg->tls_server_name, name);
    auto c = RestClient::FromConfig(*cfg, clock, {});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto got = (*c)->Get(resources::Deployments(), "team", "a");
    EXPECT_EQ(got.ok(), !name.empty()) << got.status().ToString();
  }
  EXPECT_EQ(server.request_count(), 1u) << "the unverified connection sent no request";
}

}  // namespace
}  // namespace rollgate::kube
