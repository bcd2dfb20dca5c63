#include "controller/kube/event_recorder.h"

#include <cstdio>
#include <ctime>

#include "controller/common/log.h"

namespace rollgate::kube {
namespace {

std::string Rfc3339(Clock::WallTime t, bool micro) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const auto secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  if (micro) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(us % 1000000));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

}  // namespace

ApiEventRecorder::ApiEventRecorder(KubeClient& client, const Clock& clock, std::string component,
                                   std::string instance)
    : client_(client),
      clock_(clock),
      component_(std::move(component)),
      instance_(std::move(instance)) {}

Json ApiEventRecorder::Build(const ObjectReference& obj, const std::string& type,
                             const std::string& reason, const std::string& message) {
  const auto now = clock_.WallNow();
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, ".%llx%llx", static_cast<unsigned long long>(nanos),
                static_cast<unsigned long long>(seq_.fetch_add(1) & 0xff));
  Json ev = Json::object();
  ev["apiVersion"] = Json::string("v1");
  ev["kind"] = Json::string("Event");
  ev["metadata"] = Json::object();
  ev["metadata"]["name"] = Json::string(obj.name + suffix);
  ev["metadata"]["namespace"] = Json::string(obj.namespace_);
  Json ref = Json::object();
  ref["apiVersion"] = Json::string(obj.api_version);
  ref["kind"] = Json::string(obj.kind);
  ref["namespace"] = Json::string(obj.namespace_);
  ref["name"] = Json::string(obj.name);
  if (!obj.uid.empty()) ref["uid"] = Json::string(obj.uid);
  if (!obj.resource_version.empty()) ref["resourceVersion"] = Json::string(obj.resource_version);
  ev["involvedObject"] = ref;
  ev["type"] = Json::string(type);
  ev["reason"] = Json::string(reason.substr(0, 128));
  ev["message"] = Json::string(message.size() > 1024 ? message.substr(0, 1021) + "..." : message);
  ev["source"] = Json::object();
  ev["source"]["component"] = Json::string(component_);
  ev["reportingComponent"] = Json::string(component_);
  ev["reportingInstance"] = Json::string(instance_);
  ev["firstTimestamp"] = Json::string(Rfc3339(now, false));
  ev["lastTimestamp"] = Json::string(Rfc3339(now, false));
  ev["eventTime"] = Json::string(Rfc3339(now, true));
  ev["action"] = Json::string(reason.substr(0, 128));
  ev["count"] = Json::number(1);
  return ev;
}

void ApiEventRecorder::Record(const ObjectReference& obj, const std::string& type,
                              const std::string& reason, const std::string& message) {
  auto res = client_.Create(ResourceType::Core("v1", "events"), obj.namespace_,
                            Build(obj, type, reason, message));
  if (!res.ok()) {
    log::Warn("events", "could not record event",
              {{"object", obj.namespace_ + "/" + obj.name},
               {"reason", reason},
               {"error", res.status().ToString()}});
  }
}

}  // namespace rollgate::kube
