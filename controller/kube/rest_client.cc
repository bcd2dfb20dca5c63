#include "controller/kube/rest_client.h"

#include <thread>
#include <utility>

#include "controller/common/log.h"
#include "controller/kube/api_errors.h"

namespace rollgate::kube {
namespace {

std::string Describe(const std::string& verb, const ResourceType& rt, const std::string& ns,
                     const std::string& name) {
  std::string out = verb + " " + rt.Name();
  if (!ns.empty() || !name.empty()) out += " ";
  if (!ns.empty()) out += ns + (name.empty() ? "" : "/");
  out += name;
  return out;
}

void AddQuery(std::string& path, const char* key, const std::string& value) {
  if (value.empty()) return;
  path += path.find('?') == std::string::npos ? '?' : '&';
  path += key;
  path += '=';
  path += QueryEscape(value);
}

bool Is2xx(int code) { return code >= 200 && code <= 299; }

Result<Json> ParseJson(const std::string& body, const std::string& what) {
  try {
    return Json::parse(body);
  } catch (const std::exception& e) {
    return Status(StatusCode::kMalformed,
                  what + ": response is not valid JSON (" + std::string(e.what()) + ")");
  }
}

}  // namespace

const char* PatchContentType(PatchType t) {
  switch (t) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kJsonPatch:
      return "application/json-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string MetaString(const Json& obj, const char* field) {
  if (!obj.is_object() || !obj.has_field("metadata")) return {};
  const auto& m = obj.at("metadata");
  if (!m.is_object() || !m.has_field(field) || !m.at(field).is_string()) return {};
  return m.at(field).as_string();
}

std::string ObjectKey(const Json& obj) {
  std::string ns = MetaString(obj, "namespace");
  std::string name = MetaString(obj, "name");
  return ns.empty() ? name : ns + "/" + name;
}

Result<std::string> ListPaged(KubeClient& client, const ResourceType& rt, const std::string& ns,
                              ListOptions opts,
                              const std::function<void(std::vector<Json>& items)>& on_items,
                              const std::function<void()>& on_restart) {
  bool restarted = false;
  opts.continue_token.clear();
  while (true) {
    auto page = client.List(rt, ns, opts);
    if (!page.ok()) {
      if (page.status().code() == StatusCode::kGone && !opts.continue_token.empty() && !restarted) {
        // The continue token expired: start over with one unpaged list.
        restarted = true;
        on_restart();
        opts.continue_token.clear();
        opts.limit = 0;
        continue;
      }
      return page.status();
    }
    on_items(page->items);
    if (page->continue_token.empty()) return page->resource_version;
    opts.continue_token = page->continue_token;
  }
}

Result<ObjectList> ListAll(KubeClient& client, const ResourceType& rt, const std::string& ns,
                           ListOptions opts) {
  ObjectList all;
  auto rv = ListPaged(
      client, rt, ns, std::move(opts),
      [&all](std::vector<Json>& items) {
        for (auto& item : items) all.items.push_back(std::move(item));
      },
      [&all] { all.items.clear(); });
  if (!rv.ok()) return rv.status();
  all.resource_version = std::move(rv).value();
  return all;
}

RestClient::RestClient(std::unique_ptr<HttpTransport> transport, std::shared_ptr<TokenSource> token,
                       const Clock& clock, RestClientOptions opts)
    : transport_(std::move(transport)),
      token_(std::move(token)),
      clock_(clock),
      opts_(std::move(opts)),
      limiter_(opts_.qps, opts_.burst, clock) {
  if (!opts_.sleep)
    opts_.sleep = [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); };
}

Result<std::unique_ptr<RestClient>> RestClient::FromConfig(const RestConfig& cfg,
                                                           const Clock& clock,
                                                           RestClientOptions opts) {
  TransportOptions t;
  t.server = cfg.server;
  t.tls.ca_pem = cfg.ca_pem;
  t.tls.client_cert_pem = cfg.client_cert_pem;
  t.tls.client_key_pem = cfg.client_key_pem;
  t.tls.insecure_skip_verify = cfg.insecure_skip_tls_verify;
  t.tls.server_name = cfg.tls_server_name;  // a remote cluster's kubeconfig may name it
  t.user_agent = opts.user_agent;
  auto transport = NewCpprestTransport(t);
  if (!transport.ok()) return transport.status();
  return std::make_unique<RestClient>(std::move(transport).value(), cfg.token, clock,
                                      std::move(opts));
}

Status RestClient::Authorize(HttpRequest& req) {
  if (!token_) return Status::Ok();
  auto tok = token_->Token();
  if (!tok.ok()) return tok.status();
  req.headers.emplace_back("Authorization", "Bearer " + *tok);
  return Status::Ok();
}

void RestClient::Throttle(const CancelToken* cancel) {
  const Duration wait = limiter_.Reserve();
  if (wait <= Duration::zero()) return;
  if (cancel != nullptr) {
    (void)cancel->SleepFor(wait);
  } else {
    opts_.sleep(wait);
  }
}

Result<HttpResponse> RestClient::Do(const std::string& verb, HttpRequest req,
                                    const std::string& what) {
  req.headers.emplace_back("Accept", "application/json");
  if (Status st = Authorize(req); !st.ok()) return st;
  req.timeout = opts_.request_timeout;  // the total deadline of each attempt
  for (int attempt = 0;; ++attempt) {
    Throttle(opts_.cancel);
    const auto start = clock_.Now();
    auto resp = transport_->Send(req, opts_.cancel);
    const auto latency = clock_.Now() - start;
    if (opts_.observe) opts_.observe(verb, resp.ok() ? resp->status : 0, latency);
    if (!resp.ok()) {
      return Status(resp.status().code(), what + ": " + resp.status().message());
    }
    if (Is2xx(resp->status)) return resp;
    Status st = StatusFromResponse(resp->status, resp->body, resp->headers, what);
    // 429, and 5xx with Retry-After, were not processed by the server: safe to retry any verb.
    const bool retryable = st.code() == StatusCode::kTooManyRequests ||
                           (resp->status >= 500 && st.retry_after().has_value());
    if (!retryable || attempt >= opts_.max_retries) return st;
    auto wait = st.retry_after().value_or(std::chrono::seconds(1));
    if (wait > opts_.max_retry_after) wait = opts_.max_retry_after;
    log::Debug("kube", "retrying after server asked to wait",
               {{"request", what},
                {"code", std::to_string(resp->status)},
                {"wait_s", std::to_string(wait.count())}});
    if (opts_.cancel != nullptr) {
      if (!opts_.cancel->SleepFor(wait)) {
        return Status(StatusCode::kCancelled, what + ": cancelled");
      }
    } else {
      opts_.sleep(wait);
    }
  }
}

Result<Json> RestClient::DoJson(const std::string& verb, HttpRequest req, const std::string& what) {
  auto resp = Do(verb, std::move(req), what);
  if (!resp.ok()) return resp.status();
  return ParseJson(resp->body, what);
}

Result<Json> RestClient::Get(const ResourceType& rt, const std::string& ns,
                             const std::string& name) {
  HttpRequest req;
  req.method = "GET";
  req.path = ResourcePath(rt, ns, name);
  return DoJson("get", std::move(req), Describe("get", rt, ns, name));
}

Result<ObjectList> RestClient::List(const ResourceType& rt, const std::string& ns,
                                    const ListOptions& opts) {
  HttpRequest req;
  req.method = "GET";
  req.path = ResourcePath(rt, ns);
  AddQuery(req.path, "labelSelector", opts.label_selector);
  AddQuery(req.path, "fieldSelector", opts.field_selector);
  if (opts.limit > 0) AddQuery(req.path, "limit", std::to_string(opts.limit));
  AddQuery(req.path, "continue", opts.continue_token);
  AddQuery(req.path, "resourceVersion", opts.resource_version);
  const std::string what = Describe("list", rt, ns, "");
  auto body = DoJson("list", std::move(req), what);
  if (!body.ok()) return body.status();
  Json& v = *body;
  if (!v.is_object() || !v.has_field("items") ||
      !(v.at("items").is_array() || v.at("items").is_null())) {
    return Status(StatusCode::kMalformed, what + ": response has no items array");
  }
  ObjectList out;
  if (v.at("items").is_array()) {
    auto& items = v.at("items").as_array();
    out.items.reserve(items.size());
    for (auto& item : items) out.items.push_back(std::move(item));
  }
  if (v.has_field("metadata") && v.at("metadata").is_object()) {
    const auto& m = v.at("metadata");
    if (m.has_field("resourceVersion") && m.at("resourceVersion").is_string()) {
      out.resource_version = m.at("resourceVersion").as_string();
    }
    if (m.has_field("continue") && m.at("continue").is_string()) {
      out.continue_token = m.at("continue").as_string();
    }
  }
  return out;
}

Result<Json> RestClient::Create(const ResourceType& rt, const std::string& ns, const Json& obj) {
  HttpRequest req;
  req.method = "POST";
  req.path = ResourcePath(rt, ns);
  req.body = obj.serialize();
  req.content_type = "application/json";
  return DoJson("create", std::move(req), Describe("create", rt, ns, MetaString(obj, "name")));
}

Result<Json> RestClient::Update(const ResourceType& rt, const std::string& ns, const Json& obj) {
  const std::string name = MetaString(obj, "name");
  HttpRequest req;
  req.method = "PUT";
  req.path = ResourcePath(rt, ns, name);
  req.body = obj.serialize();
  req.content_type = "application/json";
  return DoJson("update", std::move(req), Describe("update", rt, ns, name));
}

Result<Json> RestClient::UpdateStatus(const ResourceType& rt, const std::string& ns,
                                      const Json& obj) {
  const std::string name = MetaString(obj, "name");
  HttpRequest req;
  req.method = "PUT";
  req.path = ResourcePath(rt, ns, name, "status");
  req.body = obj.serialize();
  req.content_type = "application/json";
  return DoJson("update", std::move(req), Describe("update status of", rt, ns, name));
}

Result<Json> RestClient::Patch(const ResourceType& rt, const std::string& ns,
                               const std::string& name, PatchType type, const std::string& body,
                               const PatchOptions& opts) {
  const std::string what = Describe("patch", rt, ns, name) +
                           (opts.subresource.empty() ? "" : " (" + opts.subresource + ")");
  if (type == PatchType::kApply && opts.field_manager.empty()) {
    return Status(StatusCode::kInvalidArgument, what + ": server-side apply needs a field manager");
  }
  HttpRequest req;
  req.method = "PATCH";
  req.path = ResourcePath(rt, ns, name, opts.subresource);
  AddQuery(req.path, "fieldManager", opts.field_manager);
  if (type == PatchType::kApply && opts.force) AddQuery(req.path, "force", "true");
  req.body = body;
  req.content_type = PatchContentType(type);
  return DoJson("patch", std::move(req), what);
}

Status RestClient::Delete(const ResourceType& rt, const std::string& ns, const std::string& name,
                          const DeleteOptions& opts) {
  HttpRequest req;
  req.method = "DELETE";
  req.path = ResourcePath(rt, ns, name);
  Json body = Json::object();
  body["kind"] = Json::string("DeleteOptions");
  body["apiVersion"] = Json::string("v1");
  if (!opts.propagation_policy.empty()) {
    body["propagationPolicy"] = Json::string(opts.propagation_policy);
  }
  if (!opts.precondition_uid.empty() || !opts.precondition_resource_version.empty()) {
    Json pre = Json::object();
    if (!opts.precondition_uid.empty()) pre["uid"] = Json::string(opts.precondition_uid);
    if (!opts.precondition_resource_version.empty()) {
      pre["resourceVersion"] = Json::string(opts.precondition_resource_version);
    }
    body["preconditions"] = pre;
  }
  req.body = body.serialize();
  req.content_type = "application/json";
  auto resp = Do("delete", std::move(req), Describe("delete", rt, ns, name));
  return resp.ok() ? Status::Ok() : resp.status();
}

Status RestClient::Watch(const ResourceType& rt, const std::string& ns, const WatchOptions& opts,
                         const std::function<bool(WatchEvent&&)>& on_event,
                         const CancelToken& cancel) {
  const std::string what = Describe("watch", rt, ns, "");
  HttpRequest req;
  req.method = "GET";
  req.path = ResourcePath(rt, ns);
  AddQuery(req.path, "watch", "true");
  AddQuery(req.path, "labelSelector", opts.label_selector);
  AddQuery(req.path, "fieldSelector", opts.field_selector);
  AddQuery(req.path, "resourceVersion", opts.resource_version);
  if (opts.allow_bookmarks) AddQuery(req.path, "allowWatchBookmarks", "true");
  AddQuery(req.path, "timeoutSeconds", std::to_string(opts.server_timeout.count()));
  req.headers.emplace_back("Accept", "application/json");
  // Without a progress bound, the inactivity timeout must outlast the server's own timeout, or
  // quiet watches are killed; with bookmarks requested, the server speaks at least once a minute.
  req.timeout = opts.progress_timeout.count() > 0
                    ? std::chrono::duration_cast<std::chrono::milliseconds>(opts.progress_timeout)
                    : std::chrono::duration_cast<std::chrono::milliseconds>(opts.server_timeout) +
                          std::chrono::seconds(30);
  if (Status st = Authorize(req); !st.ok()) return st;
  Throttle(&cancel);

  Status stream_error;
  auto on_line = [&](std::string_view line) -> bool {
    Json ev;
    try {
      ev = Json::parse(std::string(line));
    } catch (const std::exception&) {
      stream_error = Status(StatusCode::kMalformed, what + ": watch line is not valid JSON");
      return false;
    }
    if (!ev.is_object() || !ev.has_field("type") || !ev.at("type").is_string() ||
        !ev.has_field("object") || !ev.at("object").is_object()) {
      stream_error = Status(StatusCode::kMalformed, what + ": watch event without type/object");
      return false;
    }
    const std::string type = ev.at("type").as_string();
    WatchEvent out;
    if (type == "ADDED") {
      out.type = WatchEvent::Type::kAdded;
    } else if (type == "MODIFIED") {
      out.type = WatchEvent::Type::kModified;
    } else if (type == "DELETED") {
      out.type = WatchEvent::Type::kDeleted;
    } else if (type == "BOOKMARK") {
      out.type = WatchEvent::Type::kBookmark;
    } else if (type == "ERROR") {
      stream_error = StatusFromStatusObject(ev.at("object").serialize(), what);
      return false;
    } else {
      stream_error = Status(StatusCode::kMalformed, what + ": unknown watch event type " + type);
      return false;
    }
    out.object = std::move(ev.at("object"));
    return on_event(std::move(out));
  };
  const auto start = clock_.Now();
  auto resp = transport_->Stream(req, on_line, cancel);
  if (opts_.observe) opts_.observe("watch", resp.ok() ? resp->status : 0, clock_.Now() - start);
  if (!resp.ok()) {
    return Status(resp.status().code(), what + ": " + resp.status().message());
  }
  if (!Is2xx(resp->status)) {
    return StatusFromResponse(resp->status, resp->body, resp->headers, what);
  }
  return stream_error;
}

}  // namespace rollgate::kube
