// The registry client (issue 16) against a scripted transport per origin: resolution of tags and
// digests, indexes and single-platform images, the Docker token flow and basic credentials, the
// registry's errors mapped to codes with its own words, digest checks, and where credentials
// may go (never with a redirect). The real registry is exercised by the e2e tests.
#include "controller/rollout/registry_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/common/digest.h"
#include "tests/fakes/loopback.h"

namespace rollgate::rollout {
namespace {

using kube::HttpRequest;
using kube::HttpResponse;

std::string D(const std::string& body) { return "sha256:" + Sha256Hex(body); }

// Answers by "origin path" from a table; records every request with its Authorization header.
class Registry {
 public:
  struct Seen {
    std::string origin;
    std::string path;
    std::string authorization;
    std::string accept;
  };
  std::map<std::string, std::function<HttpResponse(const HttpRequest&)>> routes;
  std::vector<Seen> seen;
  std::vector<std::string> transports;  // origins a transport was made for
  std::optional<Status> fail;           // every request fails with it

  TransportFactory Factory() {
    return [this](const kube::TransportOptions& t) -> Result<std::unique_ptr<kube::HttpTransport>> {
      transports.push_back(t.server);
      return std::unique_ptr<kube::HttpTransport>(std::make_unique<Transport>(this, t.server));
    };
  }
  void Add(const std::string& key, int status, const std::string& body,
           const std::map<std::string, std::string>& headers = {}) {
    routes[key] = [status, body, headers](const HttpRequest&) {
      return HttpResponse{status, headers, body};
    };
  }

 private:
  class Transport final : public kube::HttpTransport {
   public:
    Transport(Registry* r, std::string origin) : r_(r), origin_(std::move(origin)) {}
    Result<HttpResponse> Send(const HttpRequest& req, const CancelToken*) override {
      Seen s{origin_, req.path, "", ""};
      for (const auto& [k, v] : req.headers) {
        if (k == "Authorization") s.authorization = v;
        if (k == "Accept") s.accept = v;
      }
      r_->seen.push_back(s);
      if (r_->fail) return *r_->fail;
      auto it = r_->routes.find(origin_ + " " + req.path);
      if (it == r_->routes.end())
        return HttpResponse{404, {}, R"({"errors":[{"code":"NOT_ROUTED"}]})"};
      return it->second(req);
    }
    Result<HttpResponse> Stream(const HttpRequest&, const std::function<bool(std::string_view)>&,
                                const CancelToken&) override {
      return Status(StatusCode::kUnknown, "not used");
    }

   private:
    Registry* r_;
    std::string origin_;
  };
};

std::string ImageAmd() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)"
         R"({"digest":"sha256:)" +
         std::string(64, 'c') + R"(","size":10},"layers":[{"digest":"sha256:)" +
         std::string(64, '1') + R"(","size":1000},{"digest":"sha256:)" + std::string(64, '2') +
         R"(","size":234}]})";
}
std::string ImageArm() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)"
         R"({"digest":"sha256:)" +
         std::string(64, 'd') + R"(","size":10},"layers":[{"digest":"sha256:)" +
         std::string(64, '3') + R"(","size":5000}]})";
}
std::string Index() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
         R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
         D(ImageAmd()) +
         R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}},)"
         R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
         D(ImageArm()) +
         R"(","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]})";
}
std::map<std::string, std::string> Oci() {
  return {{"content-type", "application/vnd.oci.image.index.v1+json"}};
}

ImageRef Ref(const std::string& text) { return ParseImageRef(text).value(); }

RegistryClientOptions Options(Registry& r) {
  RegistryClientOptions o;
  o.new_transport = r.Factory();
  o.plain_http = {"127.0.0.1:5000"};
  return o;
}

TEST(RegistryClient, ResolvesATagToAnIndexAndThePlatformsAskedFor) {
  Registry r;
  const std::string o = "http://127.0.0.1:5000";
  r.Add(o + " /v2/team/worker/manifests/2.0", 200, Index(), Oci());
  r.Add(o + " /v2/team/worker/manifests/" + D(ImageAmd()), 200, ImageAmd());
  r.Add(o + " /v2/team/worker/manifests/" + D(ImageArm()), 200, ImageArm());
  auto client = NewRegistryClient(Options(r));
  auto got = client->Resolve(Ref("127.0.0.1:5000/team/worker:2.0"),
                             {Platform{"linux", "arm64", ""}, Platform{"linux", "amd64", ""},
                              Platform{"linux", "s390x", ""}});
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->digest, D(Index()));
  EXPECT_EQ(got->media_type, kOciIndexType);
  ASSERT_EQ(got->platforms.size(), 2U);
  ASSERT_EQ(got->images.size(), 2U) << "s390x is not offered";
  EXPECT_EQ(got->images[0].platform.ToString(), "linux/arm64");
  EXPECT_EQ(got->images[0].digest, D(ImageArm()));
  EXPECT_EQ(got->images[0].size, 5000);
  EXPECT_EQ(got->images[1].size, 1234);
  EXPECT_EQ(r.transports, (std::vector<std::string>{o})) << "one transport per origin";
  ASSERT_FALSE(r.seen.empty());
  EXPECT_EQ(r.seen[0].accept, ManifestAccept());
  EXPECT_EQ(r.seen[0].authorization, "") << "anonymous";
}

TEST(RegistryClient, TheTokenFlowSendsTheCredentialOnlyToTheRealmAndReusesTheToken) {
  Registry r;
  const std::string o = "https://registry.example.com";
  const std::string challenge =
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",)"
      R"(scope="repository:team/worker:pull")";
  r.routes[o + " /v2/team/worker/manifests/2.0"] = [&](const HttpRequest& req) {
    for (const auto& [k, v] : req.headers) {
      if (k == "Authorization" && v == "Bearer t0k3n") return HttpResponse{200, Oci(), Index()};
    }
    return HttpResponse{401, {{"www-authenticate", challenge}}, R"({"errors":[]})"};
  };
  r.routes[o + " /v2/team/worker/manifests/" + D(ImageAmd())] = [&](const HttpRequest& req) {
    for (const auto& [k, v] : req.headers) {
      if (k == "Authorization" && v == "Bearer t0k3n") return HttpResponse{200, {}, ImageAmd()};
    }
    return HttpResponse{401, {{"www-authenticate", challenge}}, ""};
  };
  r.Add(
      "https://auth.example.com:443 /token?service=registry.example.com&scope=repository%3Ateam"
      "%2Fworker%3Apull",
      200, R"({"token":"t0k3n","expires_in":300})");
  RegistryClientOptions opts = Options(r);
  opts.credentials = [](std::string_view host) -> std::optional<RegistryCredential> {
    if (host == "registry.example.com") return RegistryCredential{"robot", "pa55"};
    return std::nullopt;
  };
  auto got = NewRegistryClient(opts)->Resolve(Ref("registry.example.com/team/worker:2.0"),
                                              {Platform{"linux", "amd64", ""}});
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->images.size(), 1U);
  int token_requests = 0;
  for (const auto& s : r.seen) {
    if (s.origin == "https://auth.example.com:443") {
      ++token_requests;
      EXPECT_EQ(s.authorization, "Basic cm9ib3Q6cGE1NQ==") << "robot:pa55 to the realm";
    } else {
      EXPECT_TRUE(s.authorization.empty() || s.authorization == "Bearer t0k3n")
          << "never the password to the registry: " << s.authorization;
    }
  }
  EXPECT_EQ(token_requests, 1) << "the token is reused for the platform's manifest";
}

TEST(RegistryClient, BasicChallengesNeedACredential) {
  Registry r;
  const std::string o = "https://registry.example.com";
  r.routes[o + " /v2/app/manifests/1"] = [&](const HttpRequest& req) {
    for (const auto& [k, v] : req.headers) {
      if (k == "Authorization" && v == "Basic dTpw") return HttpResponse{200, {}, ImageAmd()};
    }
    return HttpResponse{
        401,
        {{"www-authenticate", R"(Basic realm="Registry")"}},
        R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})"};
  };
  r.Add(o + " /v2/app/blobs/sha256:" + std::string(64, 'c'), 200, "{}");
  auto none = NewRegistryClient(Options(r))->Resolve(Ref("registry.example.com/app:1"), {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(none.status().message().find("requires credentials"), std::string::npos)
      << none.status().message();

  RegistryClientOptions wrong = Options(r);
  wrong.credentials = [](std::string_view) { return RegistryCredential{"u", "wrong-password"}; };
  auto refused = NewRegistryClient(wrong)->Resolve(Ref("registry.example.com/app:1"), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(refused.status().message().find("UNAUTHORIZED: authentication required"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find("wrong-password"), std::string::npos);
}

TEST(RegistryClient, ASinglePlatformImageGetsItsPlatformFromTheConfigFollowingARedirectBare) {
  Registry r;
  const std::string o = "https://registry.example.com";
  const std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{}})";
  std::string image = ImageAmd();
  image.replace(image.find(std::string(64, 'c')), 64, Sha256Hex(config));
  r.routes[o + " /v2/app/manifests/1"] = [&](const HttpRequest&) {
    return HttpResponse{200, {{"content-type", kOciManifestType}}, image};
  };
  r.Add(o + " /v2/app/blobs/" + D(config), 307, "",
        {{"location", "https://storage.example.net/blobs/abc?X-Signature=s1gn"}});
  r.Add("https://storage.example.net:443 /blobs/abc?X-Signature=s1gn", 200, config);
  RegistryClientOptions opts = Options(r);
  opts.credentials = [](std::string_view) { return RegistryCredential{"u", "p"}; };
  auto got = NewRegistryClient(opts)->Resolve(
      Ref("registry.example.com/app:1"),
      {Platform{"linux", "amd64", ""}, Platform{"linux", "arm64", ""}});
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->platforms.size(), 1U);
  EXPECT_EQ(got->platforms[0].ToString(), "linux/amd64");
  ASSERT_EQ(got->images.size(), 1U);
  EXPECT_EQ(got->images[0].size, 1234);
  ASSERT_EQ(r.seen.size(), 3U);
  EXPECT_EQ(r.seen[2].origin, "https://storage.example.net:443");
  EXPECT_EQ(r.seen[2].authorization, "") << "no credential follows a redirect";
}

TEST(RegistryClient, TheRegistrysErrorsMapToCodesWithItsWords) {
  Registry r;
  const std::string o = "http://127.0.0.1:5000";
  r.Add(o + " /v2/app/manifests/missing", 404,
        R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]})");
  r.Add(o + " /v2/app/manifests/busy", 503, "<html>maintenance</html>");
  r.Add(o + " /v2/app/manifests/moved", 302, "", {{"location", "https://elsewhere/"}});
  auto client = NewRegistryClient(Options(r));
  auto missing = client->Resolve(Ref("127.0.0.1:5000/app:missing"), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "image 127.0.0.1:5000/app:missing at 127.0.0.1:5000: not found (HTTP 404: "
            "MANIFEST_UNKNOWN: manifest unknown)");
  auto busy = client->Resolve(Ref("127.0.0.1:5000/app:busy"), {});
  EXPECT_EQ(busy.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(busy.status().message().find("maintenance"), std::string::npos);
  auto moved = client->Resolve(Ref("127.0.0.1:5000/app:moved"), {});
  EXPECT_EQ(moved.status().code(), StatusCode::kMalformed);
  EXPECT_NE(moved.status().message().find("redirected (not followed)"), std::string::npos);
  r.fail = Status(StatusCode::kTransport, "connection refused");
  auto down = client->Resolve(Ref("127.0.0.1:5000/app:1"), {});
  EXPECT_EQ(down.status().code(), StatusCode::kTransport);
  EXPECT_EQ(down.status().message(), "image 127.0.0.1:5000/app:1: connection refused");
}

TEST(RegistryClient, DigestsAreVerifiedAgainstTheBody) {
  Registry r;
  const std::string o = "http://127.0.0.1:5000";
  r.Add(o + " /v2/app/manifests/" + D(Index()), 200, Index(), Oci());
  r.Add(o + " /v2/app/manifests/" + D(ImageAmd()), 200, ImageArm());  // a lying registry
  r.Add(o + " /v2/app/manifests/lies", 200, Index(),
        {{"content-type", kOciIndexType}, {"docker-content-digest", D(ImageArm())}});
  auto client = NewRegistryClient(Options(r));
  auto pinned = client->Resolve(Ref("127.0.0.1:5000/app@" + D(Index())), {});
  ASSERT_TRUE(pinned.ok()) << pinned.status().message();
  EXPECT_EQ(pinned->digest, D(Index()));
  auto tampered =
      client->Resolve(Ref("127.0.0.1:5000/app@" + D(Index())), {Platform{"linux", "amd64", ""}});
  ASSERT_FALSE(tampered.ok());
  EXPECT_NE(tampered.status().message().find("does not match"), std::string::npos);
  auto header = client->Resolve(Ref("127.0.0.1:5000/app:lies"), {});
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.status().message().find("Docker-Content-Digest"), std::string::npos);
}

TEST(RegistryClient, SchemesHostsAndRealmsAreChosenSafely) {
  Registry r;
  r.Add("https://registry-1.docker.io /v2/library/nginx/manifests/1.27", 401, "",
        {{"www-authenticate", R"(Bearer realm="http://auth.docker.io/token",service="x")"}});
  auto client = NewRegistryClient(Options(r));
  auto hub = client->Resolve(Ref("nginx:1.27"), {});
  ASSERT_FALSE(hub.ok());
  EXPECT_EQ(hub.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(hub.status().message().find("is not HTTPS"), std::string::npos)
      << hub.status().message();
  EXPECT_EQ(r.transports, (std::vector<std::string>{"https://registry-1.docker.io"}))
      << "docker.io over HTTPS at registry-1.docker.io; no request to a plain-HTTP realm";
}

TEST(RegistryClient, ResolveAllFetchesEveryPlatformOnceAndThenOnlyTheTag) {
  Registry r;
  const std::string o = "http://127.0.0.1:5000";
  r.Add(o + " /v2/app/manifests/2.0", 200, Index(), Oci());
  r.Add(o + " /v2/app/manifests/" + D(ImageAmd()), 200, ImageAmd());
  r.Add(o + " /v2/app/manifests/" + D(ImageArm()), 200, ImageArm());
  auto client = NewRegistryClient(Options(r));
  auto first = client->ResolveAll(Ref("127.0.0.1:5000/app:2.0"));
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->images.size(), 2u);
  EXPECT_EQ(first->images[0].size, 1234);
  EXPECT_EQ(first->images[1].platform.ToString(), "linux/arm64/v8");
  EXPECT_EQ(first->images[1].size, 5000);
  EXPECT_EQ(r.seen.size(), 3u);
  // What a digest names never changes: the second resolution asks only what the tag names now.
  auto second = client->ResolveAll(Ref("127.0.0.1:5000/app:2.0"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->images.size(), 2u);
  ASSERT_EQ(r.seen.size(), 4u);
  EXPECT_EQ(r.seen[3].path, "/v2/app/manifests/2.0");
}

// ---- the unhappy network, through the real transport ----

// A loopback TCP listener that misbehaves in one way: `kReset` reads the request and closes with
// a reset (SO_LINGER 0); `kFrozen` accepts and never answers (a half-open peer).
class BadPeer {
 public:
  enum class Mode { kReset, kFrozen };
  explicit BadPeer(Mode mode) : mode_(mode) {
    const testing::LoopbackListener listener = testing::ListenLoopback(8);
    fd_ = listener.fd;
    port_ = listener.port;
    if (fd_ < 0) return;
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        conns_.push_back(c);
        if (mode_ == Mode::kFrozen) continue;
        char buf[4096];
        (void)::read(c, buf, sizeof buf);
        linger l{1, 0};
        ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(c);
        conns_.pop_back();
      }
    });
  }
  BadPeer(const BadPeer&) = delete;
  BadPeer& operator=(const BadPeer&) = delete;
  ~BadPeer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  std::string registry() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  Mode mode_;
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> conns_;  // the accepting thread's, until it is joined
  std::thread thread_;
};

// A free loopback port with nothing listening on it (connections are refused).
std::string RefusingRegistry() {
  const testing::LoopbackListener l = testing::ListenLoopback(1);
  EXPECT_GE(l.fd, 0);
  ::close(l.fd);
  return "127.0.0.1:" + std::to_string(l.port);
}

Result<ResolvedImage> ResolveOver(const std::string& registry) {
  RegistryClientOptions o;
  o.plain_http = {registry};
  o.timeout = std::chrono::milliseconds(700);
  return NewRegistryClient(o)->ResolveAll(Ref(registry + "/app:2.0"));
}

TEST(RegistryClient, RefusedResetAndFrozenConnectionsAreDistinctRetryableFailures) {
  const std::string refusing = RefusingRegistry();
  auto refused = ResolveOver(refusing);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kTransport) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("image " + refusing + "/app:2.0"), std::string::npos)
      << refused.status().message();

  BadPeer resetting(BadPeer::Mode::kReset);
  auto reset = ResolveOver(resetting.registry());
  ASSERT_FALSE(reset.ok());
  EXPECT_EQ(reset.status().code(), StatusCode::kTransport) << reset.status().ToString();

  BadPeer frozen(BadPeer::Mode::kFrozen);
  const auto started = std::chrono::steady_clock::now();
  auto hung = ResolveOver(frozen.registry());
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(hung.ok());
  EXPECT_EQ(hung.status().code(), StatusCode::kTimeout) << hung.status().ToString();
  EXPECT_NE(hung.status().message().find("700ms"), std::string::npos) << hung.status().message();
  EXPECT_LT(took, std::chrono::seconds(10)) << "a frozen registry ends at the request deadline";
  // Each is one the pre-flight retries until the deadline (RegistryUnreachable), not a verdict.
  for (const auto* r : {&refused, &reset, &hung}) {
    EXPECT_NE(r->status().code(), StatusCode::kNotFound);
    EXPECT_NE(r->status().code(), StatusCode::kUnauthorized);
    EXPECT_NE(r->status().code(), StatusCode::kMalformed);
  }
}

}  // namespace
}  // namespace rollgate::rollout
