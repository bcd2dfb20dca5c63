// Informer: list+watch of one resource into an in-memory store of immutable shared objects, with
// event handlers (which enqueue keys) and a has-synced signal. The reflector loop is an explicit
// state machine: List (paged) -> Watch from the list's resourceVersion -> on a normal end, watch
// again from the last seen resourceVersion (bookmarks included) -> on 410 Gone, List again -> on
// any other failure, back off (0.8 s doubling to 30 s, jitter) and watch again. The server-side
// watch timeout is randomised in [5, 10) minutes so that many watches do not restart together.
// Thread-safety: Run() on one thread; Get/List/HasSynced from any thread. Handlers run on the
// Run() thread and must not block; the objects they receive must not be modified.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/kube/kube_client.h"
#include "controller/kube/rate_limiter.h"

namespace rollgate::kube {

using ObjectPtr = std::shared_ptr<const Json>;

// Read access to a cache of objects by "namespace/name" key (an Informer, or a map in tests).
class ObjectLister {
 public:
  virtual ~ObjectLister() = default;
  virtual ObjectPtr Get(const std::string& key) const = 0;
  virtual std::vector<ObjectPtr> ListNamespace(const std::string& ns) const = 0;
  // The objects whose "namespace/name" key starts with `key_prefix` (which names a namespace:
  // "ns/" or "ns/name-"). The default reads the namespace and filters it.
  virtual std::vector<ObjectPtr> ListPrefix(const std::string& key_prefix) const;

  // For a cache that keeps only some objects (InformerOptions::keep): an object read from the API
  // server after Mark() returned `mark` may be added to it when the cache does not hold its key
  // yet, so that an object that became interesting since its last change need not be read again.
  // A cache that holds everything ignores it.
  virtual std::uint64_t Mark() const { return 0; }
  virtual void Offer(const Json& /*obj*/, std::uint64_t /*mark*/) {}
  // The resourceVersion the cache has caught up with ("" when unknown): a list at it (or newer)
  // is not older than anything the cache has seen.
  virtual std::string last_resource_version() const { return ""; }
};

struct InformerHandlers {
  std::function<void(const ObjectPtr&)> on_add;
  std::function<void(const ObjectPtr& old_obj, const ObjectPtr& new_obj)> on_update;
  std::function<void(const ObjectPtr&)> on_delete;
};

struct InformerOptions {
  ResourceType type;
  std::string namespace_;  // "" = all namespaces
  std::string label_selector;
  std::string field_selector;
  std::int64_t page_size = 500;
  // Applied to every object before it is stored (e.g. drop managedFields to save memory).
  std::function<Json(Json&&)> transform;
  // Which objects the cache keeps (unset: all), asked of each listed or watched object before
  // its transform (and of stored, transformed ones by Prune: it must answer both alike). An object
  // it refuses is not stored, and one stored earlier is dropped without a delete event (its key
  // left the cache's interest, not the cluster). The answer may change over time: call Prune() when
  // it refuses more than before; an object it starts to accept is stored with its next change, or
  // sooner through Offer.
  std::function<bool(const Json&)> keep;
  // Every caller of Offer takes its Mark only once `keep` accepts what it will offer. Then a
  // deletion that `keep` refuses cannot be of an object offered against a later mark, and does
  // not make such an offer refused (in a cache of a few pods out of many, the other pods'
  // deletions would refuse most offers).
  bool offers_follow_interest = false;
  Backoff::Options backoff;
  std::function<double()> random01;  // default: DefaultRandom01()
  std::chrono::seconds min_watch_timeout{300};
  std::chrono::seconds max_watch_timeout{600};
  // A watch that delivers neither an event nor a bookmark for this long is stalled (a half-open
  // connection, a stuck proxy) and is restarted. The API server sends a bookmark to every watch
  // that asked for them about once a minute (measured on v1.36: the first 59 s after the watch
  // started), so 150 s leaves room for one lost bookmark and a slow server.
  std::chrono::seconds watch_progress_timeout{150};
  // Clock of the progress bookkeeping (Stalled); default: the real clock.
  const Clock* clock = nullptr;
  // Called when a watch ends abnormally and is restarted (metrics hook).
  std::function<void(const std::string& resource)> on_watch_restart;
};

class Informer final : public ObjectLister {
 public:
  Informer(KubeClient& client, InformerOptions opts);
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Register before Run().
  void AddHandlers(InformerHandlers h);
  void SetKeep(std::function<bool(const Json&)> keep) { opts_.keep = std::move(keep); }

  // Runs the reflector until `cancel` fires.
  void Run(const CancelToken& cancel);

  bool HasSynced() const { return synced_.load(); }
  // Waits for the first complete list; false on cancel or timeout.
  bool WaitForSync(const CancelToken& cancel, std::chrono::milliseconds timeout) const;

  ObjectPtr Get(const std::string& key) const override;
  std::vector<ObjectPtr> List() const;
  std::vector<ObjectPtr> ListNamespace(const std::string& ns) const override;
  std::vector<ObjectPtr> ListPrefix(const std::string& key_prefix) const override;
  std::size_t Size() const;

  std::uint64_t Mark() const override;
  // Stores `obj` (transformed) when `keep` accepts it, no object of its key is stored, and no
  // change since `mark` could have been its deletion (a delete of an object this cache did not
  // hold, or a re-list): a stale read never resurrects a deleted object. No handler runs.
  void Offer(const Json& obj, std::uint64_t mark) override;
  // Drops every stored object that `keep` now refuses; no handler runs. Returns how many.
  std::size_t Prune();
  // Prune() of the objects whose key starts with `key_prefix` only: the others are not parsed
  // again (a cache of thousands of objects that drops a few at a time).
  std::size_t PruneWithPrefix(const std::string& key_prefix);

  std::string last_resource_version() const override;
  // Why this cache counts as stalled: nothing (list, event, bookmark) has arrived from the API
  // server for longer than `bound` while Run() runs; nullopt while it is fresh. For /healthz.
  std::optional<std::string> Stalled(std::chrono::nanoseconds bound) const;
  std::uint64_t lists() const { return lists_.load(); }
  std::uint64_t watch_restarts() const { return watch_restarts_.load(); }

  // The next server-side watch timeout (exposed for tests of the randomisation).
  std::chrono::seconds NextWatchTimeout();

 private:
  Status ListAndReplace();
  Status WatchOnce(const CancelToken& cancel);
  void Apply(WatchEvent&& ev);
  ObjectPtr Make(Json&& obj) const;
  // An object as the store keeps it: its text, not a parsed tree. A cpprest JSON tree costs
  // several times its text (a heap node per value), and the caches were most of the
  // controller's memory per object (README, Performance); reads parse it again (tens of
  // microseconds for a trimmed object), so every ObjectPtr handed out is the caller's own copy.
  struct Stored {
    std::string resource_version;
    std::string text;
  };
  static Stored Store(const Json& obj);
  static ObjectPtr Load(const Stored& stored);
  std::vector<ObjectPtr> LoadWithPrefix(const std::string& prefix) const;
  bool Keeps(const Json& obj) const { return !opts_.keep || opts_.keep(obj); }
  void SetResourceVersion(const std::string& rv);
  Duration RetryDelay(const Status& st);
  void Progressed();

  KubeClient& client_;
  InformerOptions opts_;
  std::vector<InformerHandlers> handlers_;
  Backoff backoff_;

  mutable std::shared_mutex store_mu_;
  std::unordered_map<std::string, Stored> store_;
  std::string resource_version_;
  std::uint64_t changes_ = 0;         // lists and events applied, under store_mu_
  std::uint64_t unseen_deletes_ = 0;  // changes_ at the last re-list or delete of an unheld key

  std::atomic<bool> synced_{false};
  mutable std::mutex sync_mu_;
  mutable std::condition_variable sync_cv_;
  const Clock& clock_;
  std::atomic<Clock::MonoTime::rep> last_progress_;  // ticks of clock_.Now()
  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> lists_{0};
  std::atomic<std::uint64_t> watch_restarts_{0};
};

}  // namespace rollgate::kube
