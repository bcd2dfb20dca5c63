#include "controller/kube/cluster_registry.h"

#include <algorithm>
#include <utility>

#include "controller/common/base64.h"
#include "controller/common/log.h"
#include "controller/kube/json_fields.h"
#include "controller/kube/resource.h"

namespace rollgate::kube {
namespace {

// Failures that say the cluster cannot be reached (as opposed to an answer from its API server).
bool Unreachable(const Status& st) {
  return st.code() == StatusCode::kTransport || st.code() == StatusCode::kTimeout;
}

class BreakerClient final : public KubeClient {
 public:
  BreakerClient(std::unique_ptr<KubeClient> inner, std::string name, const Clock& clock,
                std::chrono::nanoseconds min_backoff, std::chrono::nanoseconds max_backoff)
      : inner_(std::move(inner)),
        name_(std::move(name)),
        clock_(clock),
        min_backoff_(min_backoff),
        max_backoff_(max_backoff) {}

  Result<Json> Get(const ResourceType& rt, const std::string& ns,
                   const std::string& name) override {
    return Call([&] { return inner_->Get(rt, ns, name); });
  }
  Result<ObjectList> List(const ResourceType& rt, const std::string& ns,
                          const ListOptions& opts) override {
    return Call([&] { return inner_->List(rt, ns, opts); });
  }
  Result<Json> Create(const ResourceType& rt, const std::string& ns, const Json& obj) override {
    return Call([&] { return inner_->Create(rt, ns, obj); });
  }
  Result<Json> Update(const ResourceType& rt, const std::string& ns, const Json& obj) override {
    return Call([&] { return inner_->Update(rt, ns, obj); });
  }
  Result<Json> UpdateStatus(const ResourceType& rt, const std::string& ns,
                            const Json& obj) override {
    return Call([&] { return inner_->UpdateStatus(rt, ns, obj); });
  }
  Result<Json> Patch(const ResourceType& rt, const std::string& ns, const std::string& name,
                     PatchType type, const std::string& body, const PatchOptions& opts) override {
    return Call([&] { return inner_->Patch(rt, ns, name, type, body, opts); });
  }
  Status Delete(const ResourceType& rt, const std::string& ns, const std::string& name,
                const DeleteOptions& opts) override {
    if (Status open = Open(); !open.ok()) return open;
    Status st = inner_->Delete(rt, ns, name, opts);
    Observe(st);
    return st;
  }
  Status Watch(const ResourceType& rt, const std::string& ns, const WatchOptions& opts,
               const std::function<bool(WatchEvent&&)>& on_event,
               const CancelToken& cancel) override {
    if (Status open = Open(); !open.ok()) return open;
    Status st = inner_->Watch(rt, ns, opts, on_event, cancel);
    Observe(st);
    return st;
  }

 private:
  template <class F>
  auto Call(F&& f) -> decltype(f()) {
    if (Status open = Open(); !open.ok()) return open;
    auto res = f();
    Observe(res.status());
    return res;
  }

  // OK while calls may go through; the fast failure while the breaker is open.
  Status Open() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tripped_ || clock_.Now() >= retry_at_) return Status::Ok();
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - clock_.Now());
    return Status(StatusCode::kUnavailable, "cluster " + name_ + " unreachable: " + last_error_ +
                                                " (next attempt in " +
                                                std::to_string(left.count()) + " ms)");
  }

  void Observe(const Status& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!Unreachable(st)) {  // an answer, even an error one: the cluster is reachable
      tripped_ = false;
      backoff_ = std::chrono::nanoseconds{0};
      return;
    }
    backoff_ = backoff_.count() == 0 ? min_backoff_ : std::min(backoff_ * 2, max_backoff_);
    tripped_ = true;
    retry_at_ = clock_.Now() + backoff_;
    last_error_ = st.message();
  }

  std::unique_ptr<KubeClient> inner_;
  const std::string name_;
  const Clock& clock_;
  const std::chrono::nanoseconds min_backoff_;
  const std::chrono::nanoseconds max_backoff_;
  std::mutex mu_;
  bool tripped_ = false;
  std::chrono::nanoseconds backoff_{0};
  Clock::MonoTime retry_at_{};
  std::string last_error_;
};

}  // namespace

std::unique_ptr<KubeClient> WithBreaker(std::unique_ptr<KubeClient> inner, std::string name,
                                        const Clock& clock, std::chrono::nanoseconds min_backoff,
                                        std::chrono::nanoseconds max_backoff) {
  return std::make_unique<BreakerClient>(std::move(inner), std::move(name), clock, min_backoff,
                                         max_backoff);
}

ClusterRegistry::ClusterRegistry(KubeClient& hub, const Clock& clock, ClusterClientFactory factory,
                                 ClusterRegistryOptions opts)
    : hub_(hub), clock_(clock), factory_(std::move(factory)), opts_(opts) {}

Result<std::shared_ptr<KubeClient>> ClusterRegistry::Client(const std::string& ns,
                                                            const std::string& name) {
  const std::string key = ns + "/" + name;
  const auto now = clock_.Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - collected_at_ >= opts_.idle) CollectLocked(now);
    auto it = clusters_.find(key);
    if (it != clusters_.end() && now - it->second.read_at < opts_.secret_recheck) {
      it->second.used_at = now;
      if (!it->second.refused.ok()) return it->second.refused;
      return it->second.client;
    }
  }
  // Read outside the lock: a slow hub delays only the callers that need this Secret read.
  auto secret = hub_.Get(resources::Secrets(), ns, name);
  std::lock_guard<std::mutex> lock(mu_);
  if (!secret.ok()) {
    const Status& st = secret.status();
    if (st.code() == StatusCode::kNotFound) {
      clusters_.erase(key);  // withdrawn: never used from memory
      return Status(StatusCode::kNotFound, "kubeconfig Secret " + key + " not found");
    }
    if (st.code() == StatusCode::kForbidden) {
      clusters_.erase(key);
      return Status(StatusCode::kForbidden,
                    "the controller may not read kubeconfig Secret " + key +
                        ": grant its ServiceAccount get on that Secret (a Role with "
                        "resourceNames, bound in namespace " +
                        ns + ")");
    }
    return Status(st.code(), "read kubeconfig Secret " + key + ": " + st.message());
  }
  const std::string rv = MetaString(*secret, "resourceVersion");
  auto it = clusters_.find(key);
  if (it != clusters_.end() && !rv.empty() && it->second.resource_version == rv) {
    it->second.read_at = now;
    it->second.used_at = now;
    if (!it->second.refused.ok()) return it->second.refused;
    return it->second.client;
  }
  Entry& e = clusters_[key];
  e.resource_version = rv;
  e.read_at = now;
  e.used_at = now;
  auto built = Build(key, *secret);
  if (!built.ok()) {
    e.client.reset();
    e.refused = built.status();
    return e.refused;
  }
  if (e.client) log::Info("clusters", "kubeconfig Secret changed; new client", {{"secret", key}});
  e.refused = Status::Ok();
  e.client = std::move(built).value();
  return e.client;
}

Result<std::shared_ptr<KubeClient>> ClusterRegistry::Build(const std::string& key,
                                                           const Json& secret) {
  const std::string source = "kubeconfig Secret " + key;
  const Json* data = Field(secret, "data");
  const Json* value = data != nullptr ? Field(*data, kKubeconfigSecretKey) : nullptr;
  if (value == nullptr || !value->is_string()) {
    return Status(StatusCode::kInvalidArgument,
                  source + ": no key \"" + kKubeconfigSecretKey + "\" (the kubeconfig goes there)");
  }
  std::optional<std::string> text = DecodeBase64(value->as_string());
  if (!text) {
    return Status(StatusCode::kInvalidArgument,
                  source + ": data." + kKubeconfigSecretKey + " is not base64");
  }
  auto config = ParseRemoteKubeconfig(*text, "Secret " + key);  // it says "kubeconfig <source>"
  if (!config.ok()) return config.status();
  auto client = factory_(*config);
  if (!client.ok()) {
    return Status(client.status().code(), source + ": " + client.status().message());
  }
  return std::shared_ptr<KubeClient>(
      WithBreaker(std::move(client).value(), key, clock_, opts_.min_backoff, opts_.max_backoff));
}

std::size_t ClusterRegistry::Collect() {
  std::lock_guard<std::mutex> lock(mu_);
  return CollectLocked(clock_.Now());
}

std::size_t ClusterRegistry::CollectLocked(Clock::MonoTime now) {
  collected_at_ = now;
  return std::erase_if(clusters_,
                       [&](const auto& kv) { return now - kv.second.used_at >= opts_.idle; });
}

std::size_t ClusterRegistry::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clusters_.size();
}

}  // namespace rollgate::kube
