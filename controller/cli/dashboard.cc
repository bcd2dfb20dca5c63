#include "controller/cli/dashboard.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "controller/api/codec.h"
#include "controller/cli/dashboard_assets.h"
#include "controller/cli/tree.h"
#include "controller/kube/resource.h"

namespace rollgate::cli {
namespace {

using metrics::HttpRequest;
using metrics::HttpResponse;
using Json = kube::Json;

constexpr char kJson[] = "application/json";
constexpr std::chrono::seconds kKeepAlive{15};

Json Str(const std::string& s) { return Json::string(s); }

// Every answer: no framing, no sniffing, no referrer (the first address carries the token), and a
// policy that lets the page load nothing but its own files.
HttpResponse Secure(HttpResponse r) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
                         "frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  return r;
}

HttpResponse JsonError(int code, const std::string& message) {
  Json body = Json::object();
  body["error"] = Str(message);
  return Secure({code, kJson, body.serialize()});
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// The value of `name` in a query string ("" when absent).
std::string QueryValue(const std::string& query, const std::string& name) {
  std::size_t pos = 0;
  while (pos <= query.size()) {
    auto end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(pos, end - pos);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string::npos ? "" : PercentDecode(pair.substr(eq + 1));
    pos = end + 1;
  }
  return "";
}

// The value of cookie `name` ("" when absent).
std::string CookieValue(const HttpRequest& req, const std::string& name) {
  const auto it = req.headers.find("cookie");
  if (it == req.headers.end()) return "";
  const std::string& c = it->second;
  std::size_t pos = 0;
  while (pos < c.size()) {
    auto end = c.find(';', pos);
    if (end == std::string::npos) end = c.size();
    std::string pair = c.substr(pos, end - pos);
    pair.erase(0, pair.find_first_not_of(' '));
    if (pair.rfind(name + "=", 0) == 0) return pair.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

bool SameSecret(const std::string& a, const std::string& b) {
  return !a.empty() && a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    parts.push_back(PercentDecode(path.substr(pos, end - pos)));
    pos = end + 1;
  }
  return parts;
}

const api::EnvironmentStatus* CurrentEnvironment(const api::Rollout& r) {
  for (const auto& e : r.status.environments) {
    if (e.name == r.status.current_environment) return &e;
  }
  return nullptr;
}

Json EnvironmentsJson(const api::Rollout& r, bool with_message) {
  Json envs = Json::array();
  std::size_t i = 0;
  for (const auto& spec : r.spec.environments) {
    Json e = Json::object();
    e["name"] = Str(spec.name);
    std::string phase = "Pending";
    std::string message;
    for (const auto& st : r.status.environments) {
      if (st.name != spec.name) continue;
      phase = api::PhaseName(st.phase);
      message = st.message;
    }
    e["phase"] = Str(phase);
    if (with_message) e["message"] = Str(message);
    envs[i++] = std::move(e);
  }
  return envs;
}

// The page that asks for the address with the token.
const char kUnauthorizedPage[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rollgate "
    "dashboard</title></head><body><h1>Rollgate dashboard</h1><p>Open the address that "
    "<code>rollgate dashboard</code> printed: it carries this session's token.</p></body></html>";

}  // namespace

// ---- RolloutStore -----------------------------------------------------------------------------

void RolloutStore::Replace(std::vector<api::Rollout> rollouts) {
  const std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, Entry> next;
  for (auto& r : rollouts) {
    const std::string key = r.Key();
    Entry e;
    if (const auto it = items_.find(key); it != items_.end()) {
      e.deployments = std::move(it->second.deployments);
    }
    e.rollout = std::move(r);
    next.emplace(key, std::move(e));
  }
  items_ = std::move(next);
  synced_ = true;
}

void RolloutStore::Upsert(api::Rollout r) {
  const std::lock_guard<std::mutex> lock(mu_);
  const std::string key = r.Key();
  items_[key].rollout = std::move(r);
}

void RolloutStore::Remove(const std::string& key) {
  const std::lock_guard<std::mutex> lock(mu_);
  items_.erase(key);
}

void RolloutStore::SetDeployments(const std::string& key,
                                  std::vector<api::DeploymentView> deployments) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (const auto it = items_.find(key); it != items_.end()) {
    it->second.deployments = std::move(deployments);
  }
}

void RolloutStore::SetError(std::string error) {
  const std::lock_guard<std::mutex> lock(mu_);
  error_ = std::move(error);
}

std::vector<RolloutStore::Entry> RolloutStore::Entries() const {
  const std::lock_guard<std::mutex> lock(mu_);
  std::vector<Entry> out;
  out.reserve(items_.size());
  for (const auto& kv : items_) out.push_back(kv.second);
  return out;
}

std::optional<RolloutStore::Entry> RolloutStore::Find(const std::string& key) const {
  const std::lock_guard<std::mutex> lock(mu_);
  const auto it = items_.find(key);
  if (it == items_.end()) return std::nullopt;
  return it->second;
}

std::string RolloutStore::error() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

bool RolloutStore::synced() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return synced_;
}

void RolloutStore::Follow(const std::string& key) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (++followed_[key] == 1) {
    follow_added_ = true;
    follow_cv_.notify_all();
  }
}

void RolloutStore::WaitForFollow(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  follow_cv_.wait_for(lock, timeout, [this] { return follow_added_; });
  follow_added_ = false;
}

void RolloutStore::Wake() {
  const std::lock_guard<std::mutex> lock(mu_);
  follow_added_ = true;
  follow_cv_.notify_all();
}

void RolloutStore::Unfollow(const std::string& key) {
  const std::lock_guard<std::mutex> lock(mu_);
  const auto it = followed_.find(key);
  if (it != followed_.end() && --it->second <= 0) followed_.erase(it);
}

std::vector<std::string> RolloutStore::Followed() const {
  const std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.reserve(followed_.size());
  for (const auto& kv : followed_) out.push_back(kv.first);
  return out;
}

// ---- JSON ---------------------------------------------------------------------------------------

std::string ListJson(const std::vector<RolloutStore::Entry>& entries, const std::string& error,
                     bool synced) {
  Json out = Json::object();
  out["synced"] = Json::boolean(synced);
  out["error"] = Str(error);
  Json list = Json::array();
  std::size_t i = 0;
  for (const auto& e : entries) {
    const api::Rollout& r = e.rollout;
    Json j = Json::object();
    j["namespace"] = Str(r.namespace_);
    j["name"] = Str(r.name);
    j["phase"] = Str(api::PhaseName(r.status.phase));
    j["revision"] = Json::number(static_cast<double>(r.status.revision));
    j["environment"] = Str(r.status.current_environment);
    j["message"] = Str(r.status.message);
    j["environments"] = EnvironmentsJson(r, false);
    list[i++] = std::move(j);
  }
  out["rollouts"] = std::move(list);
  return out.serialize();
}

std::string DetailJson(const RolloutStore::Entry& e, const TreeOptions& opts) {
  const api::Rollout& r = e.rollout;
  Json out = Json::object();
  out["namespace"] = Str(r.namespace_);
  out["name"] = Str(r.name);
  out["phase"] = Str(api::PhaseName(r.status.phase));
  out["revision"] = Json::number(static_cast<double>(r.status.revision));
  out["message"] = Str(r.status.message);
  out["waiting"] = Str(WaitingFor(r, opts));
  out["environments"] = EnvironmentsJson(r, true);
  Json tree = Json::array();
  std::size_t i = 0;
  TreeOptions plain = opts;
  plain.color = false;
  for (const auto& line : RenderTree(r, e.deployments, plain)) tree[i++] = Str(line);
  out["tree"] = std::move(tree);
  const api::EnvironmentStatus* env = CurrentEnvironment(r);
  const bool terminal = api::IsTerminal(r.status.phase);
  Json actions = Json::object();
  actions["promote"] = Json::boolean(!terminal && env != nullptr &&
                                     env->phase == api::EnvironmentPhase::kAwaitingApproval);
  actions["abort"] = Json::boolean(!terminal && env != nullptr);
  actions["retry"] =
      Json::boolean(env != nullptr && (r.status.phase == api::RolloutPhase::kFailed ||
                                       r.status.phase == api::RolloutPhase::kRolledBack ||
                                       r.status.phase == api::RolloutPhase::kAborted));
  out["actions"] = std::move(actions);
  return out.serialize();
}

// ---- Dashboard ----------------------------------------------------------------------------------

TreeOptions Dashboard::Tree() const {
  TreeOptions t;
  t.now = cfg_.now();
  t.color = false;
  t.program = cfg_.program;
  return t;
}

bool Dashboard::HostAllowed(const HttpRequest& req) const {
  const auto it = req.headers.find("host");
  if (it == req.headers.end()) return false;
  const std::string port = ":" + std::to_string(cfg_.port);
  return it->second == "127.0.0.1" + port || it->second == "localhost" + port ||
         it->second == "[::1]" + port;
}

bool Dashboard::Authorized(const HttpRequest& req) const {
  return SameSecret(CookieValue(req, "rollgate_dashboard_" + std::to_string(cfg_.port)),
                    cfg_.token);
}

HttpResponse Dashboard::Handle(const HttpRequest& req) {
  if (!HostAllowed(req)) {
    return Secure({403, "text/plain; charset=utf-8", "unexpected Host header\n"});
  }
  const bool authorized = Authorized(req);
  if (req.path == "/") {
    const std::string token = QueryValue(req.query, "token");
    if (!token.empty()) {
      if (!SameSecret(token, cfg_.token)) {
        return Secure({401, "text/html; charset=utf-8", kUnauthorizedPage});
      }
      // The token becomes a cookie and leaves the address bar (and the browser's history).
      return Secure({303,
                     "text/plain; charset=utf-8",
                     "",
                     {{"Location", "/"},
                      {"Set-Cookie", "rollgate_dashboard_" + std::to_string(cfg_.port) + "=" +
                                         cfg_.token + "; Path=/; HttpOnly; SameSite=Strict"}}});
    }
    if (!authorized) return Secure({401, "text/html; charset=utf-8", kUnauthorizedPage});
  }
  if (req.path.rfind("/api/", 0) != 0) {
    for (const auto& a : DashboardAssets()) {
      if (a.path == req.path) {
        return Secure({200, std::string(a.content_type), std::string(a.body)});
      }
    }
    return Secure({404, "text/plain; charset=utf-8", "not found\n"});
  }
  if (!authorized) return JsonError(401, "open the address rollgate dashboard printed");
  const std::vector<std::string> parts = SplitPath(req.path);  // "api", ...
  if (req.method == "POST") {
    if (parts.size() == 5 && parts[1] == "rollouts") return Act(req, parts[2], parts[3], parts[4]);
    return JsonError(404, "no such action");
  }
  if (parts.size() == 2 && parts[1] == "rollouts") {
    return Secure({200, kJson, ListJson(store_.Entries(), store_.error(), store_.synced())});
  }
  if (parts.size() == 4 && parts[1] == "rollouts") {
    const auto e = store_.Find(parts[2] + "/" + parts[3]);
    if (!e) return JsonError(404, "rollout " + parts[2] + "/" + parts[3] + " not found");
    return Secure({200, kJson, DetailJson(*e, Tree())});
  }
  if (parts.size() == 2 && parts[1] == "events") return Events(QueryValue(req.query, "rollout"));
  return JsonError(404, "not found");
}

HttpResponse Dashboard::Events(const std::string& key) {
  // Followed while the stream lives: its Deployments are read for the tree.
  std::shared_ptr<void> follow;
  if (!key.empty()) {
    store_.Follow(key);
    follow =
        std::shared_ptr<void>(nullptr, [store = &store_, key](void*) { store->Unfollow(key); });
  }
  struct State {
    std::string list;
    std::string detail;
    std::chrono::steady_clock::time_point sent;
    bool first = true;
  };
  auto st = std::make_shared<State>();
  HttpResponse r{200, "text/event-stream; charset=utf-8", ""};
  r.stream = [this, key, st, follow]() -> std::optional<std::string> {
    std::string out;
    if (st->first) out += "retry: 2000\n\n";
    st->first = false;
    std::string list = ListJson(store_.Entries(), store_.error(), store_.synced());
    if (list != st->list) {
      out += "event: list\ndata: " + list + "\n\n";
      st->list = std::move(list);
    }
    if (!key.empty()) {
      const auto e = store_.Find(key);
      std::string detail;
      if (e) {
        detail = DetailJson(*e, Tree());
      } else {
        Json gone = Json::object();
        gone["missing"] = Json::boolean(true);
        gone["synced"] = Json::boolean(store_.synced());
        detail = gone.serialize();
      }
      if (detail != st->detail) {
        out += "event: rollout\ndata: " + detail + "\n\n";
        st->detail = std::move(detail);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - st->sent >= kKeepAlive) out = ": keep-alive\n\n";
    if (!out.empty()) st->sent = now;
    return out;
  };
  r.headers.emplace_back("X-Accel-Buffering", "no");
  return Secure(std::move(r));
}

HttpResponse Dashboard::Act(const HttpRequest& req, const std::string& ns, const std::string& name,
                            const std::string& verb) {
  // A form or script of another site cannot send this: the cookie is SameSite=Strict, and the
  // Origin must be this page's.
  const auto origin = req.headers.find("origin");
  const auto host = req.headers.find("host");
  if (origin == req.headers.end() || host == req.headers.end() ||
      origin->second != "http://" + host->second) {
    return JsonError(403, "cross-origin request refused");
  }
  if (verb != "promote" && verb != "abort" && verb != "retry") {
    return JsonError(404, "unknown action " + verb);
  }
  const auto res = cfg_.act(ns, name, verb);
  if (!res.ok()) {
    const StatusCode c = res.status().code();
    const int code = c == StatusCode::kNotFound       ? 404
                     : c == StatusCode::kForbidden    ? 403
                     : c == StatusCode::kUnauthorized ? 401
                                                      : 502;
    return JsonError(code, res.status().ToString());
  }
  Json body = Json::object();
  body["message"] =
      Str(verb + " requested for " + ns + "/" + name + " (rollgate.io/" + verb + "=" + *res + ")");
  return Secure({200, kJson, body.serialize()});
}

std::string NewDashboardToken() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// ---- rollgate dashboard -------------------------------------------------------------------------

namespace {

std::vector<api::Rollout> DecodeAll(const std::vector<Json>& items) {
  std::vector<api::Rollout> out;
  for (const auto& obj : items) {
    auto r = api::DecodeRollout(obj);
    if (r.ok()) out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace

int RunDashboard(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io,
                 const CancelToken& cancel) {
  const auto rt = kube::resources::ContainerRollouts();
  // The first list decides whether the dashboard can work at all (reachable, allowed).
  auto first = kube::ListAll(client, rt, ns, {});
  if (!first.ok()) return Fail(io, first.status().ToString());
  RolloutStore store;
  store.Replace(DecodeAll(first->items));

  DashboardConfig cfg;
  cfg.token = NewDashboardToken();
  if (cfg.token.empty()) return Fail(io, "cannot draw a random token");
  cfg.program = o.program;
  cfg.now = io.now;
  cfg.act = [&client, &io](const std::string& rns, const std::string& name,
                           const std::string& verb) {
    return RequestAction(client, rns, name, verb, io.now());
  };
  std::atomic<Dashboard*> dashboard{nullptr};
  metrics::HttpServerOptions so;
  so.name = "dashboard";
  so.listen = o.dashboard_address + ":" + std::to_string(o.dashboard_port);
  if (o.dashboard_address.find(':') != std::string::npos) {
    so.listen = "[" + o.dashboard_address + "]:" + std::to_string(o.dashboard_port);
  }
  so.allow_post = true;
  so.max_body_bytes = 1024;
  so.max_connections = 64;
  so.request_timeout = std::chrono::seconds(10);
  so.fallback = [&dashboard](const HttpRequest& req) -> HttpResponse {
    Dashboard* d = dashboard.load();
    if (d == nullptr) return {503, "text/plain; charset=utf-8", "starting\n"};
    return d->Handle(req);
  };
  auto server = metrics::HttpServer::Start(so);
  if (!server.ok()) return Fail(io, server.status().message());
  cfg.port = (*server)->port();
  Dashboard dash(store, cfg);
  dashboard.store(&dash);
  metrics::HttpServer& srv = **server;

  const std::string host = o.dashboard_address.find(':') != std::string::npos
                               ? "[" + o.dashboard_address + "]"
                               : o.dashboard_address;
  io.out("Rollgate dashboard: http://" + host + ":" + std::to_string(cfg.port) +
         "/?token=" + cfg.token + "\n" + "Showing " +
         (ns.empty() ? std::string("every namespace") : "namespace " + ns) +
         " with your kubeconfig's credentials. Ctrl-C stops it.\n");

  // The watch: every change of a rollout reaches the pages at once.
  std::thread watcher([&] {
    std::string rv = first->resource_version;
    int failures = 0;
    while (!cancel.cancelled()) {
      if (rv.empty()) {
        auto list = kube::ListAll(client, rt, ns, {});
        if (!list.ok()) {
          if (cancel.cancelled()) break;
          store.SetError("listing rollouts: " + list.status().ToString());
          srv.Notify();
          cancel.SleepFor(std::chrono::seconds(std::min(++failures, 5)));
          continue;
        }
        store.Replace(DecodeAll(list->items));
        store.SetError("");
        srv.Notify();
        rv = list->resource_version;
      }
      kube::WatchOptions wo;
      wo.resource_version = rv;
      const Status st = client.Watch(
          rt, ns, wo,
          [&](kube::WatchEvent&& ev) {
            if (const std::string v = kube::MetaString(ev.object, "resourceVersion"); !v.empty()) {
              rv = v;
            }
            if (ev.type == kube::WatchEvent::Type::kBookmark) return true;
            failures = 0;
            auto r = api::DecodeRollout(ev.object);
            if (!r.ok()) return true;
            if (ev.type == kube::WatchEvent::Type::kDeleted) {
              store.Remove(r->Key());
            } else {
              store.Upsert(std::move(*r));
            }
            store.SetError("");
            srv.Notify();
            return true;
          },
          cancel);
      if (cancel.cancelled()) break;
      if (st.code() == StatusCode::kGone) {
        rv.clear();
      } else if (!st.ok()) {
        store.SetError("watch: " + st.ToString() + " (reconnecting)");
        srv.Notify();
        cancel.SleepFor(std::chrono::seconds(std::min(++failures, 5)));
      }
    }
  });
  // The target Deployments of the rollouts a page shows: read when a page opens one, then every
  // second while it is open.
  const auto wake_reader = cancel.OnCancel([&store] { store.Wake(); });
  std::thread reader([&] {
    while (!cancel.cancelled()) {
      const auto keys = store.Followed();
      for (const auto& key : keys) {
        const auto e = store.Find(key);
        if (e) store.SetDeployments(key, TargetDeployments(client, e->rollout));
      }
      if (!keys.empty()) srv.Notify();  // a stream sends only what changed
      store.WaitForFollow(std::chrono::seconds(1));
    }
  });
  while (!cancel.cancelled()) cancel.SleepFor(std::chrono::hours(1));
  watcher.join();
  reader.join();
  server->reset();  // before `dash`: no handler runs after this
  return 0;
}

}  // namespace rollgate::cli
