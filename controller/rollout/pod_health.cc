#include "controller/rollout/pod_health.h"

#include <array>
#include <string_view>

#include "controller/api/codec.h"
#include "controller/common/json_escape.h"
#include "controller/kube/json_fields.h"

namespace rollgate::rollout {
namespace {

using kube::Field;
using kube::Json;
using kube::StringField;

// The kubelet's waiting reasons for an image it cannot get (pkg/kubelet/images).
constexpr std::array<std::string_view, 5> kPullReasons = {"ErrImagePull", "ImagePullBackOff",
                                                          "InvalidImageName", "ErrImageNeverPull",
                                                          "ImageInspectError"};
// Of those, the ones no retry can cure.
constexpr std::array<std::string_view, 2> kPermanentPullReasons = {"InvalidImageName",
                                                                   "ErrImageNeverPull"};

template <std::size_t N>
bool OneOf(const std::string& s, const std::array<std::string_view, N>& set) {
  for (std::string_view v : set) {
    if (s == v) return true;
  }
  return false;
}

// A kubelet message for status and Events: valid UTF-8, at most 600 bytes of it and "...".
std::string Bounded(std::string_view msg) { return json::SanitizeUtf8(msg, 603); }

// "exit N (Reason): message" of a terminated state; "" when there is none.
std::string Termination(const Json* state) {
  const Json* term = state != nullptr ? Field(*state, "terminated") : nullptr;
  if (term == nullptr) return "";
  const Json* code = Field(*term, "exitCode");
  std::string out = "last exit ";
  out += code != nullptr && code->is_integer() ? std::to_string(code->as_integer()) : "?";
  if (const std::string reason = StringField(*term, "reason"); !reason.empty())
    out += " (" + reason + ")";
  if (const std::string msg = StringField(*term, "message"); !msg.empty())
    out += ": " + Bounded(msg);
  return out;
}

// name -> image of a pod spec's container list ("containers" or "initContainers").
std::map<std::string, std::string> SpecImages(const Json* spec, const char* list) {
  std::map<std::string, std::string> out;
  const Json* cs = spec != nullptr ? Field(*spec, list) : nullptr;
  if (cs == nullptr || !cs->is_array()) return out;
  for (const auto& c : cs->as_array()) out[StringField(c, "name")] = StringField(c, "image");
  return out;
}

}  // namespace

std::vector<PodTrouble> PodTroubles(const Json& pod, const std::string& deployment,
                                    const std::map<std::string, std::string>& images) {
  std::vector<PodTrouble> out;
  const Json* meta = Field(pod, "metadata");
  if (meta == nullptr || Field(*meta, "deletionTimestamp") != nullptr) return out;
  const Json* spec = Field(pod, "spec");
  const std::map<std::string, std::string> containers = SpecImages(spec, "containers");
  for (const auto& [name, image] : images) {
    auto it = containers.find(name);
    if (it == containers.end() || it->second != image) return out;  // not a pod of this revision
  }
  const std::map<std::string, std::string> init_containers = SpecImages(spec, "initContainers");
  PodTrouble base;
  base.deployment = deployment;
  base.pod = StringField(*meta, "name");
  if (spec != nullptr) base.node = StringField(*spec, "nodeName");
  if (auto t = api::ParseTime(StringField(*meta, "creationTimestamp")); t) base.since = *t;

  const Json* status = Field(pod, "status");
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    const Json* statuses = status != nullptr ? Field(*status, list) : nullptr;
    if (statuses == nullptr || !statuses->is_array()) continue;
    const auto& spec_images =
        std::string_view(list) == "containerStatuses" ? containers : init_containers;
    for (const auto& cs : statuses->as_array()) {
      PodTrouble t = base;
      t.container = StringField(cs, "name");
      auto si = spec_images.find(t.container);
      t.image = si != spec_images.end() ? si->second : StringField(cs, "image");
      const Json* state = Field(cs, "state");
      const Json* waiting = state != nullptr ? Field(*state, "waiting") : nullptr;
      if (waiting != nullptr) t.reason = StringField(*waiting, "reason");
      if (OneOf(t.reason, kPullReasons)) {
        t.kind = PodTrouble::Kind::kImagePull;
        t.permanent = OneOf(t.reason, kPermanentPullReasons);
        t.message = Bounded(StringField(*waiting, "message"));
        out.push_back(std::move(t));
        continue;
      }
      const Json* restarts = Field(cs, "restartCount");
      t.restarts = restarts != nullptr && restarts->is_integer() ? restarts->as_integer() : 0;
      if (t.restarts <= 0) continue;
      t.kind = PodTrouble::Kind::kCrash;
      if (t.reason.empty())
        t.reason = state != nullptr && Field(*state, "running") ? "Running" : "";
      t.message = Termination(Field(cs, "lastState"));
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::string SelectorString(const std::map<std::string, std::string>& match_labels) {
  std::string out;
  for (const auto& [k, v] : match_labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

}  // namespace rollgate::rollout
