// ImageResolver: the registry pre-flight's lookups off the reconcile workers. Every image of a
// rollout is looked up on a worker thread; Poll never blocks, returns the lookups once for the id
// they were made for, and an answer for another id is dropped. Each lookup's result is observed
// (the metrics), what it resolved to becomes the status record (ToRecord), and a client that
// throws costs only that image's lookup.
// Thread-safety: the tests poll from one thread; the resolver's workers call the fake client.
#include "controller/rollout/image_resolver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rollgate::rollout {
namespace {

using std::chrono::milliseconds;

std::string Digest(char c) { return "sha256:" + std::string(64, c); }

// A registry of fixed answers by repository; "hang" blocks until released; "throw" throws.
class FakeRegistry : public RegistryClient {
 public:
  Result<ResolvedImage> Resolve(const ImageRef& ref, const std::vector<Platform>&) override {
    return ResolveAll(ref);
  }
  Result<ResolvedImage> ResolveAll(const ImageRef& ref) override {
    calls.fetch_add(1);
    if (ref.repository == "hang") {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return released; });
    }
    if (ref.repository == "throw") throw std::runtime_error("boom");
    if (ref.repository == "missing") {
      return Status(StatusCode::kNotFound, "image " + ref.Familiar() + ": MANIFEST_UNKNOWN");
    }
    ResolvedImage out;
    out.digest = Digest('i');
    out.media_type = "application/vnd.oci.image.index.v1+json";
    out.platforms = {{"linux", "amd64", ""}, {"linux", "arm64", "v8"}};
    out.images = {{{"linux", "amd64", ""}, Digest('a'), 3000},
                  {{"linux", "arm64", "v8"}, Digest('b'), 5000}};
    return out;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    cv.notify_all();
  }

  std::atomic<int> calls{0};
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
};

// Polls until the lookups are in (or 5 s passed).
std::optional<std::map<std::string, ImageLookup>> Await(
    ImageResolver& r, const std::string& id, const std::map<std::string, std::string>& images) {
  for (int i = 0; i < 500; ++i) {
    if (auto done = r.Poll("app/r", id, images)) return done;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return std::nullopt;
}

TEST(ImageResolver, LooksUpEveryImageAndObservesEachResult) {
  FakeRegistry registry;
  std::mutex mu;
  std::vector<std::string> observed;
  ImageResolver::Options opts;
  opts.observe = [&](std::string_view result, std::chrono::duration<double> took) {
    std::lock_guard<std::mutex> lock(mu);
    observed.emplace_back(result);
    EXPECT_GE(took.count(), 0.0);
  };
  ImageResolver resolver(registry, opts);
  const std::map<std::string, std::string> images = {{"backend", "registry.example.com/app:2.0"},
                                                     {"gone", "registry.example.com/missing:2.0"},
                                                     {"odd", "registry.example.com/throw:2.0"}};
  auto done = Await(resolver, "rev1/env0/0", images);
  ASSERT_TRUE(done.has_value());
  ASSERT_EQ(done->size(), 3u);
  const ImageLookup& ok = done->at("backend");
  ASSERT_TRUE(ok.status.ok()) << ok.status.message();
  EXPECT_EQ(ok.image.name, "backend");
  EXPECT_EQ(ok.image.reference, "registry.example.com/app:2.0");
  EXPECT_EQ(ok.image.digest, Digest('i'));
  EXPECT_EQ(ok.image.size, 5000) << "the largest platform image";
  ASSERT_EQ(ok.image.platforms.size(), 2u);
  EXPECT_EQ(ok.image.platforms[1].platform, "linux/arm64/v8");
  EXPECT_EQ(ok.image.platforms[1].digest, Digest('b'));
  EXPECT_EQ(done->at("gone").status.code(), StatusCode::kNotFound);
  EXPECT_EQ(done->at("odd").status.code(), StatusCode::kInternal);
  EXPECT_NE(done->at("odd").status.message().find("boom"), std::string::npos);
  std::lock_guard<std::mutex> lock(mu);
  std::sort(observed.begin(), observed.end());
  EXPECT_EQ(observed, (std::vector<std::string>{"not_found", "resolved", "unreachable"}));
}

TEST(ImageResolver, PollNeverBlocksAndAnAnswerForAnotherIdIsDropped) {
  FakeRegistry registry;
  ImageResolver resolver(registry, {});
  const std::map<std::string, std::string> hanging = {{"a", "registry.example.com/hang:1"}};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(resolver.Poll("app/r", "id-1", hanging).has_value());
  EXPECT_FALSE(resolver.Poll("app/r", "id-1", hanging).has_value()) << "still running";
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
  // A new pre-flight (another id) replaces the pending one; the hanging answer is discarded.
  EXPECT_FALSE(resolver.Poll("app/r", "id-2", {{"a", "registry.example.com/app:1"}}).has_value());
  registry.Release();
  auto done = Await(resolver, "id-2", {{"a", "registry.example.com/app:1"}});
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->at("a").status.ok());
  EXPECT_FALSE(resolver.Poll("app/r", "id-2", {{"a", "registry.example.com/app:1"}}).has_value())
      << "a result is handed out once; the next poll looks up afresh";
}

TEST(ImageResolver, LookupResultsAreTheMetricsLabels) {
  EXPECT_EQ(LookupResult(Status::Ok()), "resolved");
  EXPECT_EQ(LookupResult(Status(StatusCode::kNotFound, "")), "not_found");
  EXPECT_EQ(LookupResult(Status(StatusCode::kUnauthorized, "")), "auth_failed");
  EXPECT_EQ(LookupResult(Status(StatusCode::kForbidden, "")), "auth_failed");
  EXPECT_EQ(LookupResult(Status(StatusCode::kMalformed, "")), "invalid");
  EXPECT_EQ(LookupResult(Status(StatusCode::kTransport, "")), "unreachable");
  EXPECT_EQ(LookupResult(Status(StatusCode::kTimeout, "")), "unreachable");
  EXPECT_EQ(LookupResult(Status(StatusCode::kUnavailable, "")), "unreachable");
}

}  // namespace
}  // namespace rollgate::rollout
