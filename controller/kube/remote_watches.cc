#include "controller/kube/remote_watches.h"

#include <vector>

#include "controller/common/log.h"
#include "controller/kube/resource.h"

namespace rollgate::kube {
namespace {

// What a remote watch keeps of a Deployment: its identity only.
Json Identity(Json&& obj) {
  Json out = Json::object();
  out["metadata"]["namespace"] = Json::string(MetaString(obj, "namespace"));
  out["metadata"]["name"] = Json::string(MetaString(obj, "name"));
  out["metadata"]["resourceVersion"] = Json::string(MetaString(obj, "resourceVersion"));
  return out;
}

}  // namespace

RemoteWatches::RemoteWatches(const Clock& clock, Changed changed, std::chrono::nanoseconds idle)
    : clock_(clock), changed_(std::move(changed)), idle_(idle) {}

RemoteWatches::~RemoteWatches() {
  std::map<Key, std::unique_ptr<Watch>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(watches_);
  }
  for (auto& [key, w] : all) Stop(*w);
}

std::unique_ptr<RemoteWatches::Watch> RemoteWatches::Start(
    const Key& key, const std::shared_ptr<KubeClient>& client) {
  auto w = std::make_unique<Watch>();
  w->client = client;
  w->cancel = std::make_unique<CancelToken>();
  InformerOptions io;
  io.type = resources::Deployments();
  io.namespace_ = key.second;
  io.transform = Identity;
  io.clock = &clock_;
  w->informer = std::make_unique<Informer>(*w->client, std::move(io));
  auto notify = [this, key] { Notify(key); };
  w->informer->AddHandlers({[notify](const ObjectPtr&) { notify(); },
                            [notify](const ObjectPtr&, const ObjectPtr&) { notify(); },
                            [notify](const ObjectPtr&) { notify(); }});
  w->thread = std::thread([i = w->informer.get(), c = w->cancel.get()] { i->Run(*c); });
  log::Info("clusters", "watching a remote cluster's deployments",
            {{"cluster", key.first}, {"namespace", key.second}});
  return w;
}

void RemoteWatches::Stop(Watch& w) {
  w.cancel->Cancel();
  if (w.thread.joinable()) w.thread.join();
}

bool RemoteWatches::Want(const std::string& cluster, const std::shared_ptr<KubeClient>& client,
                         const std::string& ns, const std::string& rollout_key) {
  const Key key{cluster, ns};
  const auto now = clock_.Now();
  std::vector<std::unique_ptr<Watch>> stop;
  bool synced = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - collected_at_ >= idle_) stop = TakeIdleLocked(now);
    auto it = watches_.find(key);
    if (it != watches_.end() && it->second->client != client) {  // rotated: a new client
      stop.push_back(std::move(it->second));
      watches_.erase(it);
      it = watches_.end();
    }
    if (it == watches_.end()) it = watches_.emplace(key, Start(key, client)).first;
    Watch& w = *it->second;
    w.used_at = now;
    w.rollouts[rollout_key] = now;
    synced = w.informer->HasSynced();
  }
  for (auto& w : stop) Stop(*w);
  return synced;
}

std::vector<std::unique_ptr<RemoteWatches::Watch>> RemoteWatches::TakeIdleLocked(
    Clock::MonoTime now) {
  collected_at_ = now;
  std::vector<std::unique_ptr<Watch>> out;
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (now - it->second->used_at >= idle_) {
      log::Info("clusters", "stopped watching a remote cluster's deployments",
                {{"cluster", it->first.first}, {"namespace", it->first.second}});
      out.push_back(std::move(it->second));
      it = watches_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::size_t RemoteWatches::Collect() {
  std::vector<std::unique_ptr<Watch>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop = TakeIdleLocked(clock_.Now());
  }
  for (auto& w : stop) Stop(*w);
  return stop.size();
}

std::size_t RemoteWatches::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watches_.size();
}

void RemoteWatches::Notify(const Key& key) {
  std::vector<std::string> rollouts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watches_.find(key);
    if (it == watches_.end()) return;
    const auto now = clock_.Now();
    for (auto r = it->second->rollouts.begin(); r != it->second->rollouts.end();) {
      if (now - r->second >= idle_) {  // that rollout stopped asking: forget it
        r = it->second->rollouts.erase(r);
        continue;
      }
      rollouts.push_back(r->first);
      ++r;
    }
  }
  for (const auto& r : rollouts) changed_(r);
}

}  // namespace rollgate::kube
