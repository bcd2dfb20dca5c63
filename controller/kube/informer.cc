#include "controller/kube/informer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "controller/common/log.h"

namespace rollgate::kube {
namespace {

std::string ResourceVersionOf(const Json& obj) { return MetaString(obj, "resourceVersion"); }

const Clock& DefaultClock() {
  static const RealClock clock;
  return clock;
}
}  // namespace

Informer::Informer(KubeClient& client, InformerOptions opts)
    : client_(client),
      opts_(std::move(opts)),
      backoff_(opts_.backoff, opts_.random01 ? opts_.random01 : DefaultRandom01()),
      clock_(opts_.clock != nullptr ? *opts_.clock : DefaultClock()),
      last_progress_(clock_.Now().time_since_epoch().count()) {
  if (!opts_.random01) opts_.random01 = DefaultRandom01();
}

void Informer::AddHandlers(InformerHandlers h) { handlers_.push_back(std::move(h)); }

ObjectPtr Informer::Make(Json&& obj) const {
  if (opts_.transform) return std::make_shared<const Json>(opts_.transform(std::move(obj)));
  return std::make_shared<const Json>(std::move(obj));
}

Informer::Stored Informer::Store(const Json& obj) {
  return Stored{ResourceVersionOf(obj), obj.serialize()};
}

ObjectPtr Informer::Load(const Stored& stored) {
  return std::make_shared<const Json>(Json::parse(stored.text));
}

std::chrono::seconds Informer::NextWatchTimeout() {
  const auto span = (opts_.max_watch_timeout - opts_.min_watch_timeout).count();
  auto extra = static_cast<std::chrono::seconds::rep>(static_cast<double>(span) * opts_.random01());
  if (extra >= span && span > 0) extra = span - 1;
  return opts_.min_watch_timeout + std::chrono::seconds(extra);
}

void Informer::SetResourceVersion(const std::string& rv) {
  if (rv.empty()) return;
  std::unique_lock lock(store_mu_);
  resource_version_ = rv;
}

std::string Informer::last_resource_version() const {
  std::shared_lock lock(store_mu_);
  return resource_version_;
}

Status Informer::ListAndReplace() {
  ListOptions lo;
  lo.label_selector = opts_.label_selector;
  lo.field_selector = opts_.field_selector;
  lo.limit = opts_.page_size;
  // Each page is filtered and transformed as it arrives: what the cache does not keep (most pods)
  // is never held beyond its page. Handlers see additions in the server's list order.
  std::vector<std::pair<std::string, ObjectPtr>> ordered;
  auto list_rv = ListPaged(
      client_, opts_.type, opts_.namespace_, lo,
      [&](std::vector<Json>& items) {
        for (auto& item : items) {
          std::string key = ObjectKey(item);
          if (key.empty() || !Keeps(item)) continue;
          ordered.emplace_back(std::move(key), Make(std::move(item)));
        }
        items.clear();
      },
      [&ordered] { ordered.clear(); });
  lists_.fetch_add(1);
  if (!list_rv.ok()) return list_rv.status();
  Progressed();

  // Build the new store, then tell handlers what changed relative to the old one.
  std::unordered_map<std::string, Stored> fresh;
  fresh.reserve(ordered.size());
  for (const auto& [key, obj] : ordered) fresh.emplace(key, Store(*obj));
  // (old, new); old empty: added. The old objects are parsed after the lock is released.
  std::vector<std::pair<std::optional<Stored>, ObjectPtr>> updates;
  std::vector<Stored> deletes;
  {
    std::unique_lock lock(store_mu_);
    for (const auto& [key, obj] : ordered) {
      auto it = store_.find(key);
      if (it == store_.end()) {
        updates.emplace_back(std::nullopt, obj);
      } else if (it->second.resource_version != fresh.at(key).resource_version) {
        updates.emplace_back(it->second, obj);
      }
    }
    for (auto& [key, stored] : store_) {
      if (!fresh.contains(key)) deletes.push_back(std::move(stored));
    }
    store_ = std::move(fresh);
    resource_version_ = *list_rv;
    unseen_deletes_ = ++changes_;  // an Offer read before this list may predate a deletion
  }
  for (const auto& [old_stored, new_obj] : updates) {
    const ObjectPtr old_obj = old_stored ? Load(*old_stored) : nullptr;
    for (const auto& h : handlers_) {
      if (!old_obj && h.on_add) h.on_add(new_obj);
      if (old_obj && h.on_update) h.on_update(old_obj, new_obj);
    }
  }
  for (const Stored& stored : deletes) {
    const ObjectPtr obj = Load(stored);
    for (const auto& h : handlers_) {
      if (h.on_delete) h.on_delete(obj);
    }
  }
  if (!synced_.exchange(true)) {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_cv_.notify_all();
  }
  return Status::Ok();
}

void Informer::Apply(WatchEvent&& ev) {
  const std::string rv = ResourceVersionOf(ev.object);
  if (ev.type == WatchEvent::Type::kBookmark) {
    SetResourceVersion(rv);
    return;
  }
  const std::string key = ObjectKey(ev.object);
  if (key.empty()) return;
  const bool deleted = ev.type == WatchEvent::Type::kDeleted;
  if (!Keeps(ev.object)) {  // not of interest (any more): forget it, tell no one
    std::unique_lock lock(store_mu_);
    ++changes_;
    if (store_.erase(key) == 0 && deleted && !opts_.offers_follow_interest) {
      unseen_deletes_ = changes_;
    }
    if (!rv.empty()) resource_version_ = rv;
    return;
  }
  ObjectPtr obj = Make(std::move(ev.object));
  std::optional<Stored> old_stored;
  std::optional<Stored> stored;
  if (!deleted) stored = Store(*obj);
  {
    std::unique_lock lock(store_mu_);
    ++changes_;
    auto it = store_.find(key);
    if (it != store_.end()) {
      old_stored = deleted ? std::move(it->second) : std::exchange(it->second, std::move(*stored));
      if (deleted) store_.erase(it);
    } else if (deleted) {
      unseen_deletes_ = changes_;
    } else {
      store_.emplace(key, std::move(*stored));
    }
    if (!rv.empty()) resource_version_ = rv;
  }
  const ObjectPtr old_obj = old_stored ? Load(*old_stored) : nullptr;
  for (const auto& h : handlers_) {
    if (ev.type == WatchEvent::Type::kDeleted) {
      if (h.on_delete) h.on_delete(old_obj ? old_obj : obj);
    } else if (old_obj) {
      if (h.on_update) h.on_update(old_obj, obj);
    } else if (h.on_add) {
      h.on_add(obj);
    }
  }
}

Status Informer::WatchOnce(const CancelToken& cancel) {
  WatchOptions wo;
  wo.label_selector = opts_.label_selector;
  wo.field_selector = opts_.field_selector;
  wo.resource_version = last_resource_version();
  wo.allow_bookmarks = true;
  wo.server_timeout = NextWatchTimeout();
  wo.progress_timeout = opts_.watch_progress_timeout;
  bool got_event = false;
  Status st = client_.Watch(
      opts_.type, opts_.namespace_, wo,
      [&](WatchEvent&& ev) {
        Progressed();
        if (!got_event) {
          got_event = true;
          backoff_.Reset();
        }
        Apply(std::move(ev));
        return true;
      },
      cancel);
  return st;
}

Duration Informer::RetryDelay(const Status& st) {
  // A server that says when to come back (429/503 with Retry-After, e.g. while it starts) is
  // believed: its hint replaces our growing backoff, which would otherwise leave us up to 30 s
  // late after an API-server restart.
  if (st.retry_after()) {
    backoff_.Reset();
    return std::min<Duration>(*st.retry_after(), opts_.backoff.max);
  }
  return backoff_.Next();
}

void Informer::Run(const CancelToken& cancel) {
  const std::string what = opts_.type.Name();
  Progressed();  // judged from the start of the run (a standby replica runs no informer)
  running_.store(true);
  bool need_list = true;
  while (!cancel.cancelled()) {
    if (need_list) {
      Status st = ListAndReplace();
      if (!st.ok()) {
        const auto wait = RetryDelay(st);
        log::Warn("informer", "list failed; retrying",
                  {{"resource", what},
                   {"error", st.ToString()},
                   {"retry_in_ms",
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::milliseconds>(wait).count())}});
        (void)cancel.SleepFor(wait);
        continue;
      }
      backoff_.Reset();
      need_list = false;
    }
    Status st = WatchOnce(cancel);
    if (cancel.cancelled()) break;
    if (st.ok()) continue;  // the server ended the watch (timeoutSeconds): resume at once
    watch_restarts_.fetch_add(1);
    if (opts_.on_watch_restart) opts_.on_watch_restart(what);
    if (st.code() == StatusCode::kGone) {
      log::Info("informer", "watch resourceVersion expired; re-listing", {{"resource", what}});
      need_list = true;
      continue;
    }
    const auto wait = RetryDelay(st);
    log::Warn(
        "informer", "watch failed; resuming",
        {{"resource", what},
         {"error", st.ToString()},
         {"resource_version", last_resource_version()},
         {"retry_in_ms",
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count())}});
    (void)cancel.SleepFor(wait);
  }
}

void Informer::Progressed() { last_progress_.store(clock_.Now().time_since_epoch().count()); }

std::optional<std::string> Informer::Stalled(std::chrono::nanoseconds bound) const {
  if (!running_.load()) return std::nullopt;
  const Clock::MonoTime last{Clock::MonoTime::duration(last_progress_.load())};
  const auto silent = clock_.Now() - last;
  if (silent <= bound) return std::nullopt;
  return "no data from the API server for the " + opts_.type.Name() + " cache for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silent).count()) + "s";
}

bool Informer::WaitForSync(const CancelToken& cancel, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(sync_mu_);
  while (!synced_.load()) {
    if (cancel.cancelled() || std::chrono::steady_clock::now() >= deadline) return false;
    sync_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  return true;
}

ObjectPtr Informer::Get(const std::string& key) const {
  std::optional<Stored> stored;
  {
    std::shared_lock lock(store_mu_);
    auto it = store_.find(key);
    if (it == store_.end()) return nullptr;
    stored = it->second;
  }
  return Load(*stored);
}

std::vector<ObjectPtr> ObjectLister::ListPrefix(const std::string& key_prefix) const {
  std::vector<ObjectPtr> out;
  for (auto& obj : ListNamespace(key_prefix.substr(0, key_prefix.find('/')))) {
    if (ObjectKey(*obj).starts_with(key_prefix)) out.push_back(std::move(obj));
  }
  return out;
}

std::vector<ObjectPtr> Informer::List() const { return LoadWithPrefix(""); }

std::vector<ObjectPtr> Informer::ListNamespace(const std::string& ns) const {
  return LoadWithPrefix(ns + "/");
}

std::vector<ObjectPtr> Informer::ListPrefix(const std::string& key_prefix) const {
  return LoadWithPrefix(key_prefix);
}

// The stored objects whose key starts with `prefix`, copied under the lock, parsed outside it.
std::vector<ObjectPtr> Informer::LoadWithPrefix(const std::string& prefix) const {
  std::vector<Stored> stored;
  {
    std::shared_lock lock(store_mu_);
    for (const auto& [k, v] : store_) {
      if (k.rfind(prefix, 0) == 0) stored.push_back(v);
    }
  }
  std::vector<ObjectPtr> out;
  out.reserve(stored.size());
  for (const Stored& v : stored) out.push_back(Load(v));
  return out;
}

std::uint64_t Informer::Mark() const {
  std::shared_lock lock(store_mu_);
  return changes_;
}

void Informer::Offer(const Json& obj, std::uint64_t mark) {
  std::string key = ObjectKey(obj);
  if (key.empty() || !Keeps(obj)) return;
  {
    std::shared_lock lock(store_mu_);
    if (store_.contains(key) || unseen_deletes_ > mark) return;
  }
  // Outside the lock: a transform may take a while.
  Stored made = Store(*Make(Json(obj)));
  std::unique_lock lock(store_mu_);
  if (unseen_deletes_ > mark) return;
  store_.try_emplace(std::move(key), std::move(made));  // a watched object, if any, is newer
}

std::size_t Informer::Prune() { return PruneWithPrefix(""); }

std::size_t Informer::PruneWithPrefix(const std::string& key_prefix) {
  std::unique_lock lock(store_mu_);
  return std::erase_if(store_, [&](const auto& kv) {
    return kv.first.starts_with(key_prefix) && !Keeps(*Load(kv.second));
  });
}

std::size_t Informer::Size() const {
  std::shared_lock lock(store_mu_);
  return store_.size();
}

}  // namespace rollgate::kube
