#include "controller/rollout/registry_client.h"

#include <cpprest/asyncrt_utils.h>
#include <cpprest/json.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "controller/common/digest.h"
#include "controller/kube/json_fields.h"
#include "controller/kube/resource.h"
#include "controller/rollout/url.h"

namespace rollgate::rollout {
namespace {

using kube::HttpRequest;
using kube::HttpResponse;
using kube::StringField;
using Json = web::json::value;

// "docker.io" is served from registry-1.docker.io.
std::string ApiHost(const std::string& registry) {
  return registry == "docker.io" ? "registry-1.docker.io" : registry;
}

std::string Header(const HttpResponse& r, const char* name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

// The registry's own words from an error body ({"errors":[{"code":..,"message":..}]}), bounded;
// the first 120 bytes of the body, sanitised, when it is not that.
std::string RegistrySays(const HttpResponse& r) {
  std::string out;
  try {
    const Json doc = Json::parse(r.body);
    const Json* errors = kube::Field(doc, "errors");
    if (errors != nullptr && errors->is_array()) {
      for (const auto& e : errors->as_array()) {
        if (!out.empty()) out += "; ";
        out += StringField(e, "code");
        if (const std::string m = StringField(e, "message"); !m.empty()) out += ": " + m;
      }
    }
  } catch (const std::exception&) {
    out.clear();
  }
  if (out.empty()) out = r.body.substr(0, 120);
  out = SanitizeForStatus(out, 300);
  return out.empty() ? "HTTP " + std::to_string(r.status) : out;
}

// The status of a non-2xx answer, as the header's error codes document.
Status ErrorFor(const HttpResponse& r, const std::string& what) {
  const std::string says = " (HTTP " + std::to_string(r.status) + ": " + RegistrySays(r) + ")";
  switch (r.status) {
    case 401:
    case 403:
      return Status(StatusCode::kUnauthorized, what + ": access denied" + says);
    case 404:
      return Status(StatusCode::kNotFound, what + ": not found" + says);
    case 408:
    case 504:
      return Status(StatusCode::kTimeout, what + ": the registry timed out" + says);
    case 429:
    case 503:
      return Status(StatusCode::kUnavailable, what + ": the registry is unavailable" + says);
    default:
      break;
  }
  if (r.status >= 300 && r.status < 400) {
    return Status(StatusCode::kMalformed, what + ": redirected (not followed)" + says);
  }
  if (r.status >= 500) {
    return Status(StatusCode::kInternal, what + ": the registry failed" + says);
  }
  return Status(StatusCode::kMalformed, what + ": unexpected answer" + says);
}

bool Listed(const std::vector<std::string>& list, const std::string& host) {
  return std::find(list.begin(), list.end(), host) != list.end();
}

class HttpRegistryClient final : public RegistryClient {
 public:
  explicit HttpRegistryClient(RegistryClientOptions opts) : opts_(std::move(opts)) {
    if (!opts_.new_transport) opts_.new_transport = kube::NewCpprestTransport;
  }

  Result<ResolvedImage> Resolve(const ImageRef& ref, const std::vector<Platform>& want) override {
    return ResolveFor(ref, &want);
  }
  Result<ResolvedImage> ResolveAll(const ImageRef& ref) override {
    return ResolveFor(ref, nullptr);
  }

 private:
  // `want` nullptr: every platform offered.
  Result<ResolvedImage> ResolveFor(const ImageRef& ref, const std::vector<Platform>* want_or_all) {
    Session s{ref, ref.Familiar(), {}};
    const std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
    if (reference.empty()) {
      return Status(StatusCode::kInvalidArgument, "image " + s.name +
                                                      " names neither a tag nor "
                                                      "a digest");
    }
    auto top = FetchManifest(s, reference, ref.digest);
    if (!top.ok()) return top.status();
    ResolvedImage out;
    out.digest = top->digest;
    out.media_type = top->manifest.media_type;
    if (top->manifest.kind == Manifest::Kind::kIndex) {
      out.platforms = top->manifest.Platforms();
      std::vector<Platform> all;
      if (want_or_all == nullptr) {
        all = out.platforms;
        if (all.size() > kMaxPlatformImages) all.resize(kMaxPlatformImages);
      }
      for (const Platform& p : want_or_all == nullptr ? all : *want_or_all) {
        const Descriptor* d = SelectPlatform(top->manifest, p);
        if (d == nullptr) continue;
        auto image = FetchManifest(s, d->digest, d->digest);
        if (!image.ok()) return image.status();
        if (image->manifest.kind != Manifest::Kind::kImage) {
          return Status(StatusCode::kMalformed, "image " + s.name + ": the " + p.ToString() +
                                                    " entry of its index is not an image");
        }
        out.images.push_back({p, d->digest, image->manifest.LayersSize()});
      }
      return out;
    }
    auto platform = FetchPlatform(s, top->manifest.config.digest);
    if (!platform.ok()) return platform.status();
    out.platforms = {*platform};
    if (want_or_all == nullptr) {
      out.images.push_back({*platform, out.digest, top->manifest.LayersSize()});
      return out;
    }
    for (const Platform& p : *want_or_all) {
      Manifest one;
      one.kind = Manifest::Kind::kIndex;
      one.manifests = {Descriptor{out.media_type, out.digest, 0, *platform}};
      if (SelectPlatform(one, p) != nullptr) {
        out.images.push_back({p, out.digest, top->manifest.LayersSize()});
      }
    }
    return out;
  }

  // One resolution: the image, and the Authorization header once a challenge was answered.
  struct Session {
    const ImageRef& ref;
    std::string name;  // the reference as users write it, for messages
    std::string authorization;
  };
  struct Fetched {
    std::string digest;
    Manifest manifest;
  };

  std::string Origin(const std::string& registry) const {
    const std::string scheme = Listed(opts_.plain_http, registry) ? "http" : "https";
    return scheme + "://" + ApiHost(registry);
  }

  Result<kube::HttpTransport*> TransportFor(const std::string& origin) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = transports_.find(origin);
    if (it != transports_.end()) return it->second.get();
    kube::TransportOptions t;
    t.server = origin;
    t.tls.ca_pem = opts_.ca_pem;
    t.user_agent = opts_.user_agent;
    t.threads = 2;
    auto made = opts_.new_transport(t);
    if (!made.ok()) return made.status();
    kube::HttpTransport* raw = made->get();
    transports_[origin] = std::move(made).value();
    return raw;
  }

  Result<HttpResponse> Get(const std::string& origin, const std::string& path,
                           std::vector<std::pair<std::string, std::string>> headers,
                           std::size_t cap, const std::string& what) {
    auto transport = TransportFor(origin);
    if (!transport.ok()) return transport.status();
    HttpRequest req;
    req.path = path;
    req.headers = std::move(headers);
    req.timeout = opts_.timeout;
    req.max_body_bytes = cap;
    auto resp = (*transport)->Send(req, nullptr);
    if (!resp.ok()) {
      return Status(resp.status().code(), what + ": " + resp.status().message());
    }
    return resp;
  }

  // GET with the session's credentials; a 401 is answered once (token realm or basic) and the
  // request repeated.
  Result<HttpResponse> AuthorizedGet(Session& s, const std::string& path,
                                     const std::vector<std::pair<std::string, std::string>>& extra,
                                     std::size_t cap, const std::string& what) {
    const std::string origin = Origin(s.ref.registry);
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto headers = extra;
      if (!s.authorization.empty()) headers.emplace_back("Authorization", s.authorization);
      auto resp = Get(origin, path, headers, cap, what);
      if (!resp.ok() || resp->status != 401 || attempt == 1) return resp;
      if (Status st = Authorize(s, *resp, what); !st.ok()) return st;
    }
    return Status(StatusCode::kUnknown, what + ": unreachable");
  }

  // Answers a registry's 401 challenge: a token from the realm (with the operator's credential
  // when there is one, and only over HTTPS unless the registry itself is plain HTTP), or basic.
  Status Authorize(Session& s, const HttpResponse& challenge_resp, const std::string& what) {
    const std::string header = Header(challenge_resp, "www-authenticate");
    auto challenge = ParseAuthChallenge(header);
    if (!challenge.ok()) {
      return Status(StatusCode::kUnauthorized,
                    what + ": access denied without a usable challenge (" +
                        SanitizeForStatus(challenge.status().message(), 200) + ")");
    }
    const std::optional<RegistryCredential> cred =
        opts_.credentials ? opts_.credentials(s.ref.registry) : std::nullopt;
    std::string basic;
    if (cred) {
      const std::string pair = cred->username + ":" + cred->password;
      basic = "Basic " +
              utility::conversions::to_base64(std::vector<unsigned char>(pair.begin(), pair.end()));
    }
    if (challenge->scheme == "basic") {
      if (!cred) {
        return Status(StatusCode::kUnauthorized,
                      what + ": the registry requires credentials, and none are configured for " +
                          s.ref.registry);
      }
      s.authorization = basic;
      return Status::Ok();
    }
    if (challenge->scheme != "bearer") {
      return Status(StatusCode::kUnauthorized,
                    what + ": unsupported authentication scheme " + challenge->scheme);
    }
    auto realm = ParseUrl(challenge->params["realm"]);
    if (!realm.ok()) {
      return Status(StatusCode::kUnauthorized, what + ": token realm: " + realm.status().message());
    }
    if (realm->scheme != "https" && !Listed(opts_.plain_http, s.ref.registry)) {
      return Status(StatusCode::kUnauthorized,
                    what + ": the token realm " + realm->Origin() + " is not HTTPS");
    }
    std::string query;
    for (const char* key : {"service", "scope"}) {
      std::string v = challenge->params[key];
      if (std::string(key) == "scope" && v.empty()) v = "repository:" + s.ref.repository + ":pull";
      if (v.empty()) continue;
      query += (query.empty() ? "?" : "&") + std::string(key) + "=" + kube::QueryEscape(v);
    }
    std::vector<std::pair<std::string, std::string>> headers;
    if (cred) headers.emplace_back("Authorization", basic);
    auto token_resp =
        Get(realm->Origin(), (realm->path.empty() ? "/" : realm->path) + query, headers,
            std::size_t{64} * 1024, what + ": token realm " + realm->Origin());
    if (!token_resp.ok()) return token_resp.status();
    if (token_resp->status != 200) {
      return Status(StatusCode::kUnauthorized, what + ": the token realm refused (HTTP " +
                                                   std::to_string(token_resp->status) + ": " +
                                                   RegistrySays(*token_resp) + ")");
    }
    auto token = DecodeTokenResponse(token_resp->body);
    if (!token.ok()) {
      return Status(StatusCode::kUnauthorized, what + ": " + token.status().message());
    }
    s.authorization = "Bearer " + *token;
    return Status::Ok();
  }

  // A manifest or index by tag or digest; `expect` ("" for a tag) must be the body's digest.
  Result<Fetched> FetchManifest(Session& s, const std::string& reference,
                                const std::string& expect) {
    const std::string what = "image " + s.name;
    const std::string cache_key = s.ref.registry + "/" + s.ref.repository + "@" + expect;
    if (!expect.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = manifests_.find(cache_key); it != manifests_.end()) return it->second;
    }
    auto resp = AuthorizedGet(s, "/v2/" + s.ref.repository + "/manifests/" + reference,
                              {{"Accept", ManifestAccept()}}, opts_.max_manifest_bytes, what);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) return ErrorFor(*resp, what + " at " + s.ref.registry);
    Fetched f;
    f.digest = "sha256:" + Sha256Hex(resp->body);
    const std::string served = Header(*resp, "docker-content-digest");
    if (!expect.empty() &&
        !(expect.starts_with("sha256:") ? expect == f.digest : DigestMatches(resp->body, expect))) {
      return Status(StatusCode::kMalformed, what +
                                                ": the registry's manifest does not match "
                                                "the digest " +
                                                expect);
    }
    if (served.starts_with("sha256:") && served != f.digest) {
      return Status(StatusCode::kMalformed, what + ": the registry's Docker-Content-Digest " +
                                                SanitizeForStatus(served, 80) +
                                                " is not the manifest's digest " + f.digest);
    }
    auto m = DecodeManifest(resp->body, Header(*resp, "content-type"));
    if (!m.ok()) return Status(StatusCode::kMalformed, what + ": " + m.status().message());
    f.manifest = std::move(m).value();
    if (!expect.empty()) Cache(manifests_, cache_key, f);
    return f;
  }

  // Keeps what a digest names; forgets everything when full (digests never change, so a
  // forgotten entry is only fetched again).
  template <typename V>
  void Cache(std::map<std::string, V>& cache, const std::string& key, const V& value) {
    constexpr std::size_t kMaxCached = 512;
    std::lock_guard<std::mutex> lock(mu_);
    if (cache.size() >= kMaxCached) cache.clear();
    cache.emplace(key, value);
  }

  // The platform of a single-platform image, from its config blob. A blob may be redirected to
  // storage the registry names: followed once, without credentials.
  Result<Platform> FetchPlatform(Session& s, const std::string& config_digest) {
    const std::string what = "image " + s.name + " config";
    const std::string cache_key = s.ref.registry + "/" + s.ref.repository + "@" + config_digest;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = platforms_.find(cache_key); it != platforms_.end()) return it->second;
    }
    auto p = FetchPlatformUncached(s, config_digest, what);
    if (p.ok()) Cache(platforms_, cache_key, *p);
    return p;
  }

  Result<Platform> FetchPlatformUncached(Session& s, const std::string& config_digest,
                                         const std::string& what) {
    auto resp = AuthorizedGet(s, "/v2/" + s.ref.repository + "/blobs/" + config_digest, {},
                              opts_.max_config_bytes, what);
    if (!resp.ok()) return resp.status();
    if (resp->status >= 300 && resp->status < 400 && resp->status != 304) {
      const std::string location = Header(*resp, "location");
      const std::size_t scheme_end = location.find("://");
      const std::size_t path_start =
          scheme_end == std::string::npos ? std::string::npos : location.find('/', scheme_end + 3);
      auto origin = ParseUrl(location.substr(0, path_start));
      if (!origin.ok() ||
          (origin->scheme != "https" && !Listed(opts_.plain_http, s.ref.registry))) {
        return Status(StatusCode::kMalformed, what + ": redirected to an unusable location");
      }
      std::string path = path_start == std::string::npos ? "/" : location.substr(path_start);
      if (std::any_of(path.begin(), path.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= 0x20; })) {
        return Status(StatusCode::kMalformed, what + ": redirected to an unusable location");
      }
      resp = Get(origin->Origin(), path, {}, opts_.max_config_bytes, what);
      if (!resp.ok()) return resp.status();
    }
    if (resp->status != 200) return ErrorFor(*resp, what + " at " + s.ref.registry);
    if (!DigestMatches(resp->body, config_digest)) {
      return Status(StatusCode::kMalformed, what + ": the blob does not match " + config_digest);
    }
    try {
      const Json doc = Json::parse(resp->body);
      Platform p{StringField(doc, "os"), StringField(doc, "architecture"),
                 StringField(doc, "variant")};
      if (p.os.empty() || p.architecture.empty()) {
        return Status(StatusCode::kMalformed, what + ": no os/architecture");
      }
      return p;
    } catch (const std::exception&) {
      return Status(StatusCode::kMalformed, what + ": not JSON");
    }
  }

  RegistryClientOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<kube::HttpTransport>> transports_;  // by origin
  // By "registry/repository@digest"; guarded by mu_.
  std::map<std::string, Fetched> manifests_;
  std::map<std::string, Platform> platforms_;
};

}  // namespace

std::unique_ptr<RegistryClient> NewRegistryClient(RegistryClientOptions opts) {
  return std::make_unique<HttpRegistryClient>(std::move(opts));
}

}  // namespace rollgate::rollout
