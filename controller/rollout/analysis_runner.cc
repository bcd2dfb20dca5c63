// AnalysisRunner: a fixed pool of threads taking analysis samples (see analysis_runner.h).
// Thread-safety: mu_ guards the queue and the entries; the client is called with no lock held.
#include "controller/rollout/analysis_runner.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "controller/common/log.h"

namespace rollgate::rollout {

AnalysisRunner::AnalysisRunner(PrometheusClient& client, Options opts)
    : client_(client), opts_(std::move(opts)) {
  const int n = std::max(1, opts_.workers);
  threads_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Work(); });
}

AnalysisRunner::~AnalysisRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

std::optional<SampleResult> AnalysisRunner::Poll(const std::string& rollout, const std::string& id,
                                                 const std::string& address,
                                                 const std::vector<Check>& checks) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(rollout);
  if (it != entries_.end() && it->second.id == id) {
    if (!it->second.result) return std::nullopt;  // queued or running
    SampleResult done = std::move(*it->second.result);
    entries_.erase(it);
    return done;
  }
  // None, or one for another sample (an older revision, attempt or sample): replaced. A queued
  // job of the old sample is dropped; a running one finds its id gone and discards its result.
  if (it != entries_.end()) {
    std::erase_if(queue_, [&](const Job& j) { return j.rollout == rollout; });
    entries_.erase(it);
  }
  if (stopping_ || queue_.size() >= opts_.max_queued) return std::nullopt;  // polled again later
  entries_[rollout] = Entry{id, std::nullopt};
  queue_.push_back(Job{rollout, id, address, checks});
  wake_.notify_one();
  return std::nullopt;
}

void AnalysisRunner::Forget(const std::string& rollout) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(queue_, [&](const Job& j) { return j.rollout == rollout; });
  entries_.erase(rollout);
}

std::size_t AnalysisRunner::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + running_;
}

void AnalysisRunner::Work() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    SampleResult result;
    try {
      result = client_.Sample(job.address, job.checks);
    } catch (const std::exception& e) {  // the client promises not to throw; never lose a worker
      result = AggregateChecks({CheckResult{"analysis", SampleOutcome::kInconclusive, std::nullopt,
                                            "analysis: " + SanitizeForStatus(e.what(), 200)}});
    }
    bool deliver = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
      auto it = entries_.find(job.rollout);
      if (it != entries_.end() && it->second.id == job.id) {
        it->second.result = std::move(result);
        deliver = true;
      }
    }
    if (deliver && opts_.on_done) {
      try {
        opts_.on_done(job.rollout);
      } catch (const std::exception& e) {
        log::Warn("analysis", "sample-done callback failed", {{"error", e.what()}});
      }
    }
  }
}

}  // namespace rollgate::rollout
