#include "controller/kube/leader_election.h"

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "controller/common/log.h"

namespace rollgate::kube {
namespace {

std::string MicroTime(Clock::WallTime t) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const auto secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(us % 1000000));
  return buf;
}

std::string SpecString(const Json& lease, const char* field) {
  if (!lease.has_field("spec") || !lease.at("spec").is_object()) return {};
  const auto& s = lease.at("spec");
  return s.has_field(field) && s.at(field).is_string() ? s.at(field).as_string() : std::string();
}

int SpecInt(const Json& lease, const char* field) {
  if (!lease.has_field("spec") || !lease.at("spec").is_object()) return 0;
  const auto& s = lease.at("spec");
  return s.has_field(field) && s.at(field).is_integer() ? s.at(field).as_integer() : 0;
}

}  // namespace

Status ValidateLeaderElectionOptions(const LeaderElectionOptions& o) {
  if (o.namespace_.empty() || o.name.empty() || o.identity.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "leader election needs a namespace, a lease name and an identity");
  }
  if (o.retry_period <= std::chrono::milliseconds::zero()) {
    return Status(StatusCode::kInvalidArgument, "leader election retry period must be positive");
  }
  if (!(o.lease_duration > o.renew_deadline)) {
    return Status(StatusCode::kInvalidArgument,
                  "leader election lease duration must be greater than the renew deadline");
  }
  if (!(o.renew_deadline.count() * 10 > o.retry_period.count() * 12)) {
    return Status(StatusCode::kInvalidArgument,
                  "leader election renew deadline must be greater than 1.2 x the retry period");
  }
  return Status::Ok();
}

LeaderElector::LeaderElector(KubeClient& client, const Clock& clock, LeaderElectionOptions opts,
                             Callbacks cb)
    : client_(client), clock_(clock), opts_(std::move(opts)), cb_(std::move(cb)) {}

Json LeaderElector::BuildLease(const Json* existing, bool transition) const {
  Json lease = existing != nullptr ? *existing : Json::object();
  lease["apiVersion"] = Json::string("coordination.k8s.io/v1");
  lease["kind"] = Json::string("Lease");
  lease["metadata"]["name"] = Json::string(opts_.name);
  lease["metadata"]["namespace"] = Json::string(opts_.namespace_);
  const std::string now = MicroTime(clock_.WallNow());
  Json& spec = lease["spec"];
  spec["holderIdentity"] = Json::string(opts_.identity);
  spec["leaseDurationSeconds"] = Json::number(static_cast<int>(
      std::chrono::duration_cast<std::chrono::seconds>(opts_.lease_duration).count()));
  spec["renewTime"] = Json::string(now);
  if (transition || existing == nullptr) {
    spec["acquireTime"] = Json::string(now);
    const int transitions = existing != nullptr ? SpecInt(*existing, "leaseTransitions") : 0;
    spec["leaseTransitions"] = Json::number(existing != nullptr ? transitions + 1 : 0);
  }
  return lease;
}

bool LeaderElector::TryAcquireOrRenew() {
  const auto rt = resources::Leases();
  auto got = client_.Get(rt, opts_.namespace_, opts_.name);
  if (!got.ok()) {
    if (got.status().code() != StatusCode::kNotFound) {
      log::Warn("leader", "cannot read the lease", {{"error", got.status().ToString()}});
      return false;
    }
    auto created = client_.Create(rt, opts_.namespace_, BuildLease(nullptr, true));
    if (!created.ok()) {
      log::Info("leader", "lease creation lost or failed",
                {{"error", created.status().ToString()}});
      return false;
    }
    observed_holder_ = opts_.identity;
    observed_renew_time_ = SpecString(*created, "renewTime");
    observed_resource_version_ = MetaString(*created, "resourceVersion");
    observed_at_ = clock_.Now();
    return true;
  }
  const Json& lease = *got;
  const std::string holder = SpecString(lease, "holderIdentity");
  const std::string renew = SpecString(lease, "renewTime");
  // Expiry is judged on our own clock, from when we last saw the Lease change.
  if (holder != observed_holder_ || renew != observed_renew_time_ ||
      MetaString(lease, "resourceVersion") != observed_resource_version_) {
    observed_holder_ = holder;
    observed_renew_time_ = renew;
    observed_resource_version_ = MetaString(lease, "resourceVersion");
    observed_at_ = clock_.Now();
    observed_duration_s_ = SpecInt(lease, "leaseDurationSeconds");
  }
  const bool ours = holder == opts_.identity;
  const auto duration = std::chrono::seconds(observed_duration_s_ > 0 ? observed_duration_s_ : 15);
  const bool expired = clock_.Now() >= observed_at_ + duration;
  if (!ours && !holder.empty() && !expired) return false;
  auto updated = client_.Update(rt, opts_.namespace_, BuildLease(&lease, !ours));
  if (!updated.ok()) {
    // A Conflict means someone else wrote the Lease since we read it: they won this round.
    log::Debug("leader", "lease update failed", {{"error", updated.status().ToString()}});
    return false;
  }
  if (!ours) {
    log::Info("leader", "acquired the lease",
              {{"lease", opts_.namespace_ + "/" + opts_.name},
               {"identity", opts_.identity},
               {"previous", holder.empty() ? "(released)" : holder}});
  }
  observed_holder_ = opts_.identity;
  observed_renew_time_ = SpecString(*updated, "renewTime");
  observed_resource_version_ = MetaString(*updated, "resourceVersion");
  observed_at_ = clock_.Now();
  return true;
}

void LeaderElector::Release() {
  const auto rt = resources::Leases();
  auto got = client_.Get(rt, opts_.namespace_, opts_.name);
  if (!got.ok() || SpecString(*got, "holderIdentity") != opts_.identity) return;
  Json lease = *got;
  lease["spec"]["holderIdentity"] = Json::string("");
  lease["spec"]["leaseDurationSeconds"] = Json::number(1);
  lease["spec"]["renewTime"] = Json::string(MicroTime(clock_.WallNow()));
  auto res = client_.Update(rt, opts_.namespace_, lease);
  if (res.ok()) {
    log::Info("leader", "released the lease", {{"lease", opts_.namespace_ + "/" + opts_.name}});
  } else {
    log::Warn("leader", "could not release the lease", {{"error", res.status().ToString()}});
  }
}

void LeaderElector::LoseLeadership(const char* why) {
  if (!leader_.exchange(false)) return;  // already lost (the watchdog and Run may both get here)
  if (cb_.on_leader_changed) cb_.on_leader_changed(false);
  log::Error("leader", std::string("lost the lease: ") + why,
             {{"lease", opts_.namespace_ + "/" + opts_.name}});
  if (cb_.on_stopped_leading) cb_.on_stopped_leading();
}

void LeaderElector::Run(const CancelToken& stop) {
  log::Info("leader", "campaigning",
            {{"lease", opts_.namespace_ + "/" + opts_.name}, {"identity", opts_.identity}});
  while (!stop.cancelled()) {
    if (TryAcquireOrRenew()) break;
    (void)stop.SleepFor(opts_.retry_period);
  }
  if (stop.cancelled()) return;
  leader_.store(true);
  if (cb_.on_leader_changed) cb_.on_leader_changed(true);
  if (cb_.on_started_leading) cb_.on_started_leading();

  // The watchdog: leadership ends at (start of the last successful renewal + renew deadline),
  // whether or not a renewal is still waiting on a request (a half-open connection, a frozen
  // proxy), so this replica stops acting before any other may take the Lease over.
  std::mutex mu;
  std::condition_variable cv;
  Clock::MonoTime deadline = clock_.Now() + opts_.renew_deadline;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      if (clock_.Now() >= deadline) {
        lock.unlock();
        LoseLeadership("could not renew within the renew deadline");
        return;
      }
      // Polls: `clock_` may be a test clock that real waits know nothing of.
      cv.wait_for(lock, std::chrono::milliseconds(20));
    }
  });
  auto stop_watchdog = [&] {
    {
      const std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    watchdog.join();
  };

  while (!stop.cancelled() && leader_.load()) {
    (void)stop.SleepFor(opts_.retry_period);
    if (stop.cancelled() || !leader_.load()) break;
    // The Lease's new renewTime is no earlier than this instant: count the deadline from here.
    const auto attempt = clock_.Now();
    if (TryAcquireOrRenew()) {
      const std::lock_guard<std::mutex> lock(mu);
      if (leader_.load()) deadline = attempt + opts_.renew_deadline;
    }
  }
  stop_watchdog();
  if (!leader_.load()) return;  // lost: the successor may already hold the Lease
  leader_.store(false);
  if (cb_.on_leader_changed) cb_.on_leader_changed(false);
  Release();
}

}  // namespace rollgate::kube
