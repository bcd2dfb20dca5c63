// `rollgate dashboard`: a local web UI on a loopback address, acting with the user's own kubeconfig
// (so with the user's own RBAC; nothing new runs in the cluster). A watch on ContainerRollouts
// feeds a store; pages get the list and one rollout's tree (the same lines as `rollgate get`)
// by Server-Sent Events; promote / abort / retry send the same annotations as the CLI.
//
// Who may use it: the server listens on loopback only, and every request must carry the
// random token printed with the address (the first visit turns `?token=` into an HttpOnly,
// SameSite=Strict cookie and drops it from the address bar). Requests naming another Host are
// refused (DNS rebinding), and a POST must come from the page's own origin.
// Thread-safety: RolloutStore is thread-safe; Dashboard::Handle runs on the HTTP server's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller/api/types.h"
#include "controller/cli/args.h"
#include "controller/cli/commands.h"
#include "controller/cli/tree.h"
#include "controller/common/cancel.h"
#include "controller/kube/kube_client.h"
#include "controller/metrics/http_server.h"

namespace rollgate::cli {

// The rollouts the dashboard's watch has seen, with the target Deployments of those a page shows.
class RolloutStore {
 public:
  struct Entry {
    api::Rollout rollout;
    std::vector<api::DeploymentView> deployments;
  };
  // After a list: the rollouts now, replacing every earlier one (Deployments kept by key).
  void Replace(std::vector<api::Rollout> rollouts);
  void Upsert(api::Rollout r);
  void Remove(const std::string& key);
  void SetDeployments(const std::string& key, std::vector<api::DeploymentView> deployments);
  // The watch's trouble ("" when it is fine), shown on every page.
  void SetError(std::string error);

  std::vector<Entry> Entries() const;  // by namespace, then name
  std::optional<Entry> Find(const std::string& key) const;
  std::string error() const;
  bool synced() const;  // a list has succeeded

  // The rollouts a page shows in detail: their Deployments are read while a page is open.
  void Follow(const std::string& key);
  void Unfollow(const std::string& key);
  std::vector<std::string> Followed() const;
  // Waits until a rollout is newly followed or `timeout` passes (or Wake is called).
  void WaitForFollow(std::chrono::milliseconds timeout);
  void Wake();

 private:
  mutable std::mutex mu_;
  std::map<std::string, Entry> items_;
  std::map<std::string, int> followed_;
  std::condition_variable follow_cv_;
  bool follow_added_ = false;
  std::string error_;
  bool synced_ = false;
};

// The JSON the pages get (one line each, for an SSE data field).
// {"synced":true,"error":"","rollouts":[{"namespace","name","phase","revision","environment",
//   "message","environments":[{"name","phase"}]}]}
std::string ListJson(const std::vector<RolloutStore::Entry>& entries, const std::string& error,
                     bool synced);
// {"namespace","name","phase","revision","message","waiting","tree":[lines],
//  "environments":[{"name","phase","message"}],"actions":{"promote","abort","retry"}}
std::string DetailJson(const RolloutStore::Entry& e, const TreeOptions& opts);

struct DashboardConfig {
  std::string token;  // what every request must carry
  int port = 0;       // the server's, for the Host check
  std::string program = "rollgate";
  std::function<api::WallTime()> now;
  // Sends promote | abort | retry to ns/name; the annotation's value, or why it failed.
  std::function<Result<std::string>(const std::string& ns, const std::string& name,
                                    const std::string& verb)>
      act;
};

class Dashboard {
 public:
  Dashboard(RolloutStore& store, DashboardConfig cfg) : store_(store), cfg_(std::move(cfg)) {}
  // Every request: the files, /api/rollouts, /api/rollouts/NS/NAME, /api/events[?rollout=NS/NAME]
  // (Server-Sent Events: `list` and `rollout` events when they change, a comment every 15 s) and
  // POST /api/rollouts/NS/NAME/{promote,abort,retry}.
  metrics::HttpResponse Handle(const metrics::HttpRequest& req);

 private:
  bool HostAllowed(const metrics::HttpRequest& req) const;
  bool Authorized(const metrics::HttpRequest& req) const;
  metrics::HttpResponse Events(const std::string& key);
  metrics::HttpResponse Act(const metrics::HttpRequest& req, const std::string& ns,
                            const std::string& name, const std::string& verb);
  TreeOptions Tree() const;

  RolloutStore& store_;
  DashboardConfig cfg_;
};

// A random token: 32 hex digits from the system's CSPRNG.
std::string NewDashboardToken();

// rollgate dashboard: serves until `cancel`; 0 then, 1 when it cannot start (address in use,
// API server unreachable at the start).
int RunDashboard(kube::KubeClient& client, const Options& o, const std::string& ns, const Io& io,
                 const CancelToken& cancel);

}  // namespace rollgate::cli
