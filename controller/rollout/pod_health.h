// Pod health of an environment's new pods, as the kubelet reports it: an image the node cannot
// pull, a container that keeps crashing. A Deployment's own status says neither (its pods are just
// "unavailable" until the progress deadline), so while an environment verifies and a target has
// not rolled out after a grace period, the planner asks the reconciler to list the target's pods
// (Plan::observe_pods); PodTroubles reads each pod, and the planner fails the environment
// ImagePullFailed or ContainerCrashing when a trouble passes its threshold (PodHealthOptions).
// See docs/design.md "Pod health: failing before the deadline".
// Thread-safety: pure functions and values.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "controller/api/types.h"
#include "controller/kube/kube_client.h"

namespace rollgate::rollout {

// One container of one new pod in trouble.
struct PodTrouble {
  enum class Kind { kImagePull, kCrash };
  Kind kind = Kind::kImagePull;
  std::string deployment;  // "ns/name"
  std::string pod;
  std::string node;  // spec.nodeName; "" before scheduling
  std::string container;
  std::string image;    // the image the container runs (spec), as the rollout set it
  std::string reason;   // the kubelet's waiting reason: ErrImagePull, ImagePullBackOff, ...
  std::string message;  // the kubelet's waiting message; for a crash, the last termination
  int restarts = 0;
  bool permanent = false;  // InvalidImageName, ErrImageNeverPull: retrying cannot help
  api::WallTime since{};   // the pod's creation: pulls are retried from then on
};

struct PodHealthObservation {
  std::vector<PodTrouble> troubles;
};

struct PodHealthOptions {
  // A new pod that still cannot pull its image this long after it was created fails the
  // environment ImagePullFailed (--image-pull-failure-seconds). The kubelet retries pulls with
  // backoff (10 s, 20 s, ...), so 30 s means at least two failed pulls; a transient registry
  // hiccup recovers within it.
  std::chrono::seconds image_pull_failure{30};
  // A container of a new pod that restarted this many times fails the environment
  // ContainerCrashing (--crash-restarts). With the kubelet's crash backoff (10 s, 20 s, 40 s) the
  // third restart comes about 70 s after the first start.
  int crash_restarts = 3;
  // Pods are looked at only after the environment has verified this long without rolling out:
  // a healthy rollout costs no pod list.
  std::chrono::seconds check_after{10};
};

// The troubles of one pod of `deployment` ("ns/name"). Only a pod whose containers named in
// `images` (container -> image) all run those images is looked at: the pods of the old
// ReplicaSet, and pods of another revision, yield nothing. A pod being deleted yields nothing.
// Its containers and init containers are read from status: waiting on a pull (ErrImagePull,
// ImagePullBackOff, InvalidImageName, ErrImageNeverPull, RegistryUnavailable) is a pull trouble;
// a restart count above zero is a crash trouble, carrying the last termination.
std::vector<PodTrouble> PodTroubles(const kube::Json& pod, const std::string& deployment,
                                    const std::map<std::string, std::string>& images);

// The label selector ("k=v,k2=v2") of a Deployment's spec.selector.matchLabels; "" when it has
// none (then its pods cannot be told apart, and pod health is not observed).
std::string SelectorString(const std::map<std::string, std::string>& match_labels);

}  // namespace rollgate::rollout
