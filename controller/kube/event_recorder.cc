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

// ---- AsyncEventRecorder ----

AsyncEventRecorder::AsyncEventRecorder(KubeClient& client, const Clock& clock,
                                       std::string component, std::string instance, Options opts)
    : client_(client),
      clock_(clock),
      builder_(client, clock, std::move(component), std::move(instance)),
      opts_(opts),
      thread_([this] { Run(); }) {}

AsyncEventRecorder::~AsyncEventRecorder() {
  (void)Flush(opts_.flush_timeout);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void AsyncEventRecorder::Record(const ObjectReference& obj, const std::string& type,
                                const std::string& reason, const std::string& message) {
  std::string key = obj.namespace_;
  for (const std::string* part : {&obj.name, &obj.uid, &type, &reason, &message}) {
    key += '\x1f';
    key += *part;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = queued_.find(key); it != queued_.end()) {
      ++it->second->count;
      aggregated_.fetch_add(1);
      return;
    }
    if (queue_.size() >= opts_.max_pending) {
      dropped_.fetch_add(1);
      return;
    }
    queue_.push_back(Pending{key, obj, type, reason, message, 1});
    queued_[key] = std::prev(queue_.end());
  }
  cv_.notify_all();
}

bool AsyncEventRecorder::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_; });
}

void AsyncEventRecorder::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) {  // the destructor's flush has had its time: what is left is dropped
      dropped_.fetch_add(queue_.size());
      return;
    }
    Pending p = std::move(queue_.front());
    queued_.erase(p.key);
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Send(std::move(p));
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

// Creates the Event, or updates the count of the same Event sent within the window.
void AsyncEventRecorder::Send(Pending p) {
  const auto now = clock_.Now();
  const ResourceType events = ResourceType::Core("v1", "events");
  if (auto it = sent_.find(p.key); it != sent_.end() && now - it->second.at < opts_.window) {
    Sent& s = it->second;
    Json patch = Json::object();
    patch["count"] = Json::number(s.count + p.count);
    patch["lastTimestamp"] = Json::string(Rfc3339(clock_.WallNow(), false));
    auto res = client_.Patch(events, p.obj.namespace_, s.name, PatchType::kMerge, patch.serialize(),
                             PatchOptions{});
    if (res.ok()) {
      s.count += p.count;
      s.at = now;
      aggregated_.fetch_add(static_cast<std::uint64_t>(p.count));
      return;
    }
    sent_.erase(it);  // gone (expired, deleted): create a new one
  }
  Json ev = builder_.Build(p.obj, p.type, p.reason, p.message);
  ev["count"] = Json::number(p.count);
  const std::string name = ev.at("metadata").at("name").as_string();
  auto res = client_.Create(events, p.obj.namespace_, ev);
  if (!res.ok()) {
    log::Warn("events", "could not record event",
              {{"object", p.obj.namespace_ + "/" + p.obj.name},
               {"reason", p.reason},
               {"error", res.status().ToString()}});
    return;
  }
  created_.fetch_add(1);
  Remember(p.key, Sent{name, p.count, now});
}

void AsyncEventRecorder::Remember(const std::string& key, Sent s) {
  if (sent_.size() >= opts_.max_remembered) {
    const auto now = clock_.Now();
    std::erase_if(sent_, [&](const auto& e) { return now - e.second.at >= opts_.window; });
    if (sent_.size() >= opts_.max_remembered) sent_.clear();
  }
  sent_[key] = std::move(s);
}

}  // namespace rollgate::kube
