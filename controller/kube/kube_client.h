// KubeClient: typed REST operations on any group/version/resource, namespaced or cluster-scoped,
// with objects as JSON values. The interface every component takes in its constructor; the real
// implementation is RestClient, tests use a recording fake.
// Thread-safety: implementations are safe for concurrent calls.
#pragma once

#include <cpprest/json.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controller/common/cancel.h"
#include "controller/common/status.h"
#include "controller/kube/resource.h"

namespace rollgate::kube {

using Json = web::json::value;

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::int64_t limit = 0;        // page size; 0: no paging
  std::string continue_token;    // from the previous page
  std::string resource_version;  // "" (most recent, quorum read) or "0" (any, from the cache)
};

struct ObjectList {
  std::vector<Json> items;
  std::string resource_version;  // the list's resourceVersion (watch from here)
  std::string continue_token;    // non-empty when more pages follow
};

enum class PatchType { kMerge, kStrategicMerge, kJsonPatch, kApply };
const char* PatchContentType(PatchType t);

struct PatchOptions {
  std::string field_manager;  // required for kApply
  bool force = false;         // kApply: take ownership of conflicting fields
  std::string subresource;    // "status" to patch the status subresource
};

struct DeleteOptions {
  std::string propagation_policy;  // "Foreground", "Background", "Orphan" or ""
  std::string precondition_uid;    // delete only this incarnation
  std::string precondition_resource_version;
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // resume point
  bool allow_bookmarks = true;
  std::chrono::seconds server_timeout{300};  // timeoutSeconds sent to the server
  // The longest silence (no event, no bookmark) tolerated before the watch counts as stalled and
  // fails with kTimeout; 0: server_timeout + 30 s. A half-open connection delivers nothing and
  // never closes: only this bound ends it.
  std::chrono::seconds progress_timeout{0};
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type = Type::kAdded;
  Json object;
};

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  virtual Result<Json> Get(const ResourceType& rt, const std::string& ns,
                           const std::string& name) = 0;
  // One page (see ListAll for every page).
  virtual Result<ObjectList> List(const ResourceType& rt, const std::string& ns,
                                  const ListOptions& opts) = 0;
  virtual Result<Json> Create(const ResourceType& rt, const std::string& ns, const Json& obj) = 0;
  virtual Result<Json> Update(const ResourceType& rt, const std::string& ns, const Json& obj) = 0;
  virtual Result<Json> UpdateStatus(const ResourceType& rt, const std::string& ns,
                                    const Json& obj) = 0;
  virtual Result<Json> Patch(const ResourceType& rt, const std::string& ns, const std::string& name,
                             PatchType type, const std::string& body, const PatchOptions& opts) = 0;
  virtual Status Delete(const ResourceType& rt, const std::string& ns, const std::string& name,
                        const DeleteOptions& opts) = 0;

  // Streams watch events to `on_event` until the server ends the stream (OK), `on_event` returns
  // false (OK), the server sends an ERROR event (its Status: kGone for an expired
  // resourceVersion), the connection fails or a line is malformed (an error), or `cancel` fires
  // (kCancelled). Events are delivered as they arrive.
  virtual Status Watch(const ResourceType& rt, const std::string& ns, const WatchOptions& opts,
                       const std::function<bool(WatchEvent&&)>& on_event,
                       const CancelToken& cancel) = 0;
};

// Lists every page (limit/continue). When a continue token expires mid-way (410), starts over
// once without paging hints, as client-go's pager does.
Result<ObjectList> ListAll(KubeClient& client, const ResourceType& rt, const std::string& ns,
                           ListOptions opts);
// The same list, handed over a page at a time as it arrives: `on_items` gets each page's items (to
// keep or drop), so a caller that keeps little of each object never holds every page at once.
// `on_restart` runs when the list starts over (an expired continue token): forget what was handed
// so far. Returns the list's resourceVersion.
Result<std::string> ListPaged(KubeClient& client, const ResourceType& rt, const std::string& ns,
                              ListOptions opts,
                              const std::function<void(std::vector<Json>& items)>& on_items,
                              const std::function<void()>& on_restart);

// Small accessors for object metadata (empty string when absent).
std::string MetaString(const Json& obj, const char* field);  // metadata.<field>
std::string ObjectKey(const Json& obj);                      // "namespace/name" or "name"

}  // namespace rollgate::kube
