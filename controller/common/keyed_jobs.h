// KeyedJobs: slow work (an analysis sample, a registry lookup) taken off the reconcile workers.
// A job may wait on a slow tenant-chosen server up to its own deadline; run on a reconcile
// worker, a few slow servers would stall every rollout in the cluster. Here a small fixed pool of
// threads runs the jobs; the reconciler polls (Poll) and requeues until the result is in, then
// plans with it on a later reconcile.
//
// Results are keyed: one pending job per key (a rollout), identified by an id the caller derives
// from what the job is for (revision, environment, attempt, sample number). Polling with another
// id drops the older job (its result, when it comes, is discarded), so a result is never used for
// another purpose than it was computed for.
//
// Bounded: at most `workers` jobs run at once and at most `max_queued` wait; a job that does not
// fit is not queued (Poll returns nullopt; it is offered again on the next poll). Workers start
// when a job finds none idle, up to `workers`, and then stay: a controller whose rollouts never
// take an analysis sample or look up a registry keeps no thread (or its stack) for it.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "controller/common/log.h"

namespace rollgate {

template <typename R>
class KeyedJobs {
 public:
  struct Options {
    int workers = 4;              // jobs run at once
    std::size_t max_queued = 64;  // jobs waiting for a worker
    // Called (on a worker thread, no lock held) with the key when its result is in, so that it is
    // reconciled at once; may be empty (the reconciler's requeue polls anyway).
    std::function<void(const std::string& key)> on_done;
    // The result of a job that threw (jobs promise not to; a worker is never lost), from what().
    std::function<R(const std::string& what)> on_exception;
    std::string name = "jobs";  // in log lines
  };

  explicit KeyedJobs(Options opts) : opts_(std::move(opts)) {}
  KeyedJobs(const KeyedJobs&) = delete;
  KeyedJobs& operator=(const KeyedJobs&) = delete;
  // Stops taking jobs and joins the workers (each running job ends within its own deadline).
  ~KeyedJobs() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      queue_.clear();
    }
    wake_.notify_all();
    // No worker starts once stopping_ is set, so threads_ no longer changes.
    for (auto& t : threads_) t.join();
  }

  // Never blocks on I/O. The result of job `id` of `key` when it is done (and forgets it);
  // otherwise nullopt, after queueing `job` unless it is queued or running already.
  std::optional<R> Poll(const std::string& key, const std::string& id, std::function<R()> job) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.id == id) {
      if (!it->second.result) return std::nullopt;  // queued or running
      R done = std::move(*it->second.result);
      entries_.erase(it);
      return done;
    }
    // None, or one for another purpose: replaced. A queued job of the old id is dropped; a
    // running one finds its id gone and discards its result.
    if (it != entries_.end()) {
      std::erase_if(queue_, [&](const Job& j) { return j.key == key; });
      entries_.erase(it);
    }
    if (stopping_ || queue_.size() >= opts_.max_queued) return std::nullopt;  // polled again later
    if (queue_.size() >= idle_ &&
        threads_.size() < static_cast<std::size_t>(std::max(1, opts_.workers))) {
      try {
        threads_.emplace_back([this] { Work(); });
      } catch (const std::exception& e) {  // no thread now: with none at all, offered again later
        log::Warn(opts_.name, "cannot start a worker", {{"error", e.what()}});
        if (threads_.empty()) return std::nullopt;
      }
    }
    entries_[key] = Entry{id, std::nullopt};
    queue_.push_back(Job{key, id, std::move(job)});
    wake_.notify_one();
    return std::nullopt;
  }

  // Drops whatever the key has pending (deleted, or no longer waiting for it).
  void Forget(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(queue_, [&](const Job& j) { return j.key == key; });
    entries_.erase(key);
  }

  // Jobs queued or running, for tests and metrics.
  std::size_t pending() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size() + running_;
  }

  // Worker threads started so far (at most `workers`), for tests.
  std::size_t threads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_.size();
  }

 private:
  struct Job {
    std::string key;
    std::string id;
    std::function<R()> run;
  };
  struct Entry {
    std::string id;
    std::optional<R> result;  // set when done
  };

  void Work() {
    while (true) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ++idle_;
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        ++running_;
      }
      std::optional<R> result;
      try {
        result = job.run();
      } catch (const std::exception& e) {
        result = opts_.on_exception(e.what());
      }
      bool deliver = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        --running_;
        auto it = entries_.find(job.key);
        if (it != entries_.end() && it->second.id == job.id) {
          it->second.result = std::move(result);
          deliver = true;
        }
      }
      if (deliver && opts_.on_done) {
        try {
          opts_.on_done(job.key);
        } catch (const std::exception& e) {
          log::Warn(opts_.name, "job-done callback failed", {{"error", e.what()}});
        }
      }
    }
  }

  Options opts_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> queue_;                 // guarded by mu_
  std::map<std::string, Entry> entries_;  // by key; guarded by mu_
  std::size_t running_ = 0;               // guarded by mu_
  std::size_t idle_ = 0;                  // workers waiting for a job; guarded by mu_
  bool stopping_ = false;                 // guarded by mu_
  std::vector<std::thread> threads_;      // guarded by mu_ until stopping_ is set
};

}  // namespace rollgate
