// ImageResolver: the lookups of the registry pre-flight (spec.imagePolicy; planner.h
// RegistryPreFlight) off the reconcile workers, on a KeyedJobs pool (common/keyed_jobs.h): a
// registry that does not answer costs a lookup its request deadline, and a reconcile worker
// waiting on it would stall every other rollout. One job looks up every image of one rollout's
// spec.images; the reconciler polls with an id naming the pre-flight it is for.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "controller/api/types.h"
#include "controller/common/keyed_jobs.h"
#include "controller/rollout/planner.h"
#include "controller/rollout/registry_client.h"

namespace rollgate::rollout {

class ImageResolver {
 public:
  struct Options {
    int workers = 2;              // rollouts looked up at once
    std::size_t max_queued = 64;  // rollouts waiting for a worker
    // Called (on a worker thread) with the rollout's key when its lookups are done; may be empty.
    std::function<void(const std::string& rollout)> on_done;
    // Called after each image's lookup with its result (LookupResult) and how long it took.
    std::function<void(std::string_view result, std::chrono::duration<double> took)> observe;
  };

  ImageResolver(RegistryClient& client, Options opts);

  // Never blocks on I/O. The lookups of `images` (logical name -> reference) for pre-flight `id`
  // of `rollout` when they are done (and forgets them); otherwise nullopt, after queueing them
  // unless they are queued or running already.
  std::optional<std::map<std::string, ImageLookup>> Poll(
      const std::string& rollout, const std::string& id,
      const std::map<std::string, std::string>& images);

  void Forget(const std::string& rollout) { jobs_.Forget(rollout); }
  std::size_t pending() const { return jobs_.pending(); }

 private:
  std::map<std::string, ImageLookup> LookUp(const std::map<std::string, std::string>& images);

  RegistryClient& client_;
  std::function<void(std::string_view, std::chrono::duration<double>)> observe_;
  KeyedJobs<std::map<std::string, ImageLookup>> jobs_;  // last: its workers stop first
};

// The `result` label of rollgate_image_resolutions_total for a lookup's status: "resolved",
// "not_found", "auth_failed", "invalid" or "unreachable".
std::string_view LookupResult(const Status& status);

// What status.resolvedImages records of a resolution: each platform image fetched, with its
// digest and size; `size` the largest of them.
api::ResolvedImage ToRecord(const std::string& logical, const std::string& reference,
                            const ResolvedImage& resolved);

}  // namespace rollgate::rollout
