#include "controller/kube/informer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <memory>
#include <thread>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::kube {
namespace {

Json Obj(const std::string& ns, const std::string& name, const std::string& rv) {
  Json o = Json::object();
  o["metadata"] = Json::object();
  o["metadata"]["namespace"] = Json::string(ns);
  o["metadata"]["name"] = Json::string(name);
  o["metadata"]["resourceVersion"] = Json::string(rv);
  o["metadata"]["managedFields"] = Json::array(3);
  return o;
}

// A KubeClient whose List and Watch answers are scripted per call; records what was asked.
class ScriptedClient : public testing::UnimplementedClient {
 public:
  struct WatchScript {
    std::vector<WatchEvent> events;
    Status end;  // how the stream ends
  };
  std::mutex mu;
  std::deque<Result<ObjectList>> lists;
  std::deque<WatchScript> watches;
  std::vector<ListOptions> list_calls;
  std::vector<WatchOptions> watch_calls;
  std::function<void()> before_watch;  // runs before each watch delivers its script

  Result<ObjectList> List(const ResourceType&, const std::string&, const ListOptions& o) override {
    std::lock_guard<std::mutex> l(mu);
    list_calls.push_back(o);
    if (lists.empty()) return Status(StatusCode::kUnavailable, "no more scripted lists");
    auto r = std::move(lists.front());
    lists.pop_front();
    return r;
  }
  Status Watch(const ResourceType&, const std::string&, const WatchOptions& o,
               const std::function<bool(WatchEvent&&)>& on_event,
               const CancelToken& cancel) override {
    WatchScript s;
    {
      std::lock_guard<std::mutex> l(mu);
      watch_calls.push_back(o);
      if (watches.empty()) {
        s.end = Status(StatusCode::kCancelled, "idle");
      } else {
        s = std::move(watches.front());
        watches.pop_front();
      }
    }
    if (before_watch) before_watch();
    for (auto& e : s.events) {
      if (!on_event(std::move(e))) break;
    }
    if (s.end.code() == StatusCode::kCancelled) {
      // End of script: stay quiet like an idle watch until cancelled.
      while (!cancel.cancelled()) (void)cancel.SleepFor(std::chrono::milliseconds(5));
    }
    return s.end;
  }
};

ObjectList ListOf(std::vector<Json> items, const std::string& rv, const std::string& cont = "") {
  ObjectList l;
  l.items = std::move(items);
  l.resource_version = rv;
  l.continue_token = cont;
  return l;
}

WatchEvent Ev(WatchEvent::Type t, Json o) { return WatchEvent{t, std::move(o)}; }

InformerOptions FastOptions() {
  InformerOptions o;
  o.type = resources::Deployments();
  o.page_size = 2;
  o.backoff.initial = std::chrono::milliseconds(1);
  o.backoff.max = std::chrono::milliseconds(4);
  o.random01 = [] { return 0.5; };
  return o;
}

struct Recorder {
  std::mutex mu;
  std::vector<std::string> events;
  InformerHandlers Handlers() {
    return {[this](const ObjectPtr& o) { Add("add " + ObjectKey(*o)); },
            [this](const ObjectPtr& a, const ObjectPtr& b) {
              Add("update " + ObjectKey(*b) + " " + MetaString(*a, "resourceVersion") + "->" +
                  MetaString(*b, "resourceVersion"));
            },
            [this](const ObjectPtr& o) { Add("delete " + ObjectKey(*o)); }};
  }
  void Add(std::string s) {
    std::lock_guard<std::mutex> l(mu);
    events.push_back(std::move(s));
  }
  std::vector<std::string> Get() {
    std::lock_guard<std::mutex> l(mu);
    return events;
  }
};

// Runs the informer until `done` holds (or 5 s), then stops it.
template <class Pred>
bool RunUntil(Informer& inf, Pred done) {
  CancelToken cancel;
  std::thread t([&] { inf.Run(cancel); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool ok = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      ok = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  cancel.Cancel();
  t.join();
  return ok;
}

TEST(InformerTest, PagedListThenWatchFromListVersion) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1"), Obj("a", "y", "2")}, "", "tok"));
  c.lists.emplace_back(ListOf({Obj("b", "z", "3")}, "10"));
  c.watches.push_back({{Ev(WatchEvent::Type::kModified, Obj("a", "x", "11")),
                        Ev(WatchEvent::Type::kAdded, Obj("b", "w", "12")),
                        Ev(WatchEvent::Type::kDeleted, Obj("a", "y", "13"))},
                       Status(StatusCode::kCancelled, "")});
  Informer inf(c, FastOptions());
  Recorder rec;
  inf.AddHandlers(rec.Handlers());
  ASSERT_TRUE(RunUntil(inf, [&] { return rec.Get().size() >= 6; }));
  EXPECT_EQ(rec.Get(), (std::vector<std::string>{"add a/x", "add a/y", "add b/z",
                                                 "update a/x 1->11", "add b/w", "delete a/y"}));
  ASSERT_EQ(c.list_calls.size(), 2u);
  EXPECT_EQ(c.list_calls[0].limit, 2);
  EXPECT_EQ(c.list_calls[1].continue_token, "tok");
  ASSERT_GE(c.watch_calls.size(), 1u);
  EXPECT_EQ(c.watch_calls[0].resource_version, "10");
  EXPECT_TRUE(c.watch_calls[0].allow_bookmarks);
  EXPECT_TRUE(inf.HasSynced());
  EXPECT_EQ(inf.Size(), 3u);
  EXPECT_EQ(inf.last_resource_version(), "13");
  EXPECT_EQ(inf.ListNamespace("b").size(), 2u);
  ASSERT_NE(inf.Get("a/x"), nullptr);
  EXPECT_EQ(MetaString(*inf.Get("a/x"), "resourceVersion"), "11");
}

TEST(InformerTest, ResumesFromLastVersionAfterDropAndBookmark) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1")}, "5"));
  Json bookmark = Obj("", "", "20");
  c.watches.push_back({{Ev(WatchEvent::Type::kModified, Obj("a", "x", "7"))},
                       Status(StatusCode::kTransport, "connection reset")});
  c.watches.push_back({{Ev(WatchEvent::Type::kBookmark, bookmark)}, Status::Ok()});
  c.watches.push_back({{}, Status(StatusCode::kMalformed, "bad line")});
  Informer inf(c, FastOptions());
  ASSERT_TRUE(RunUntil(inf, [&] {
    std::lock_guard<std::mutex> l(c.mu);
    return c.watch_calls.size() >= 4;
  }));
  EXPECT_EQ(c.list_calls.size(), 1u) << "a dropped watch resumes without re-listing";
  EXPECT_EQ(c.watch_calls[1].resource_version, "7");
  EXPECT_EQ(c.watch_calls[2].resource_version, "20") << "bookmarks advance the resume point";
  EXPECT_EQ(c.watch_calls[3].resource_version, "20");
  EXPECT_EQ(inf.watch_restarts(), 2u) << "normal ends are not restarts";
}

TEST(InformerTest, GoneTriggersRelistAndDiffsTheStore) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1"), Obj("a", "y", "2")}, "5"));
  c.watches.push_back({{}, Status(StatusCode::kGone, "too old resource version")});
  c.lists.emplace_back(ListOf({Obj("a", "x", "1"), Obj("a", "z", "9")}, "50"));
  Informer inf(c, FastOptions());
  Recorder rec;
  inf.AddHandlers(rec.Handlers());
  ASSERT_TRUE(RunUntil(inf, [&] {
    std::lock_guard<std::mutex> l(c.mu);
    return c.watch_calls.size() >= 2;
  }));
  EXPECT_EQ(c.list_calls.size(), 2u);
  EXPECT_EQ(c.watch_calls[1].resource_version, "50");
  auto ev = rec.Get();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[2], "add a/z");
  EXPECT_EQ(ev[3], "delete a/y") << "objects gone during the gap are deleted; unchanged are quiet";
  EXPECT_EQ(inf.lists(), 2u);
}

TEST(InformerTest, ListFailuresBackOffAndSyncLater) {
  ScriptedClient c;
  c.lists.emplace_back(Status(StatusCode::kUnavailable, "apiserver starting"));
  c.lists.emplace_back(Status(StatusCode::kForbidden, "rbac"));
  c.lists.emplace_back(ListOf({Obj("a", "x", "1")}, "5"));
  Informer inf(c, FastOptions());
  EXPECT_FALSE(inf.HasSynced());
  ASSERT_TRUE(RunUntil(inf, [&] { return inf.HasSynced(); }));
  EXPECT_EQ(c.list_calls.size(), 3u);
}

TEST(InformerTest, RetryAfterFromTheServerReplacesTheBackoff) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1")}, "5"));
  // A long own backoff: only the server's short hint lets the test finish quickly.
  Status starting(StatusCode::kTooManyRequests, "storage is (re)initializing");
  starting.set_retry_after(std::chrono::seconds(0));
  for (int i = 0; i < 5; ++i) c.watches.push_back({{}, starting});
  auto opts = FastOptions();
  opts.backoff.initial = std::chrono::seconds(20);
  opts.backoff.max = std::chrono::seconds(30);
  Informer inf(c, opts);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunUntil(inf, [&] {
    std::lock_guard<std::mutex> l(c.mu);
    return c.watch_calls.size() >= 6;
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(InformerTest, TransformIsAppliedBeforeStoring) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1")}, "5"));
  auto opts = FastOptions();
  opts.transform = [](Json&& o) {
    o["metadata"].erase("managedFields");
    return std::move(o);
  };
  Informer inf(c, opts);
  ASSERT_TRUE(RunUntil(inf, [&] { return inf.HasSynced(); }));
  auto x = inf.Get("a/x");
  ASSERT_NE(x, nullptr);
  EXPECT_FALSE(x->at("metadata").has_field("managedFields"));
}

// The store keeps each object's text, not its parsed tree: every read parses it again, so what a
// caller gets equals what was stored (strings with escapes and non-ASCII, numbers, nesting) and
// is its own copy, from Get, List and ListNamespace alike.
TEST(InformerTest, ReadsReturnEqualObjectsEachTheCallersOwnCopy) {
  Json stored = Obj("a", "x", "1");
  stored["metadata"]["annotations"]["note"] = Json::string("quote \" slash \\ newline \n é ✔");
  stored["spec"]["replicas"] = Json::number(3);
  stored["spec"]["ratio"] = Json::number(0.1);
  stored["spec"]["big"] = Json::number(static_cast<std::int64_t>(9007199254740993LL));
  stored["spec"]["template"]["spec"]["containers"][0]["image"] = Json::string("r/app:2.0");
  ScriptedClient c;
  c.lists.emplace_back(ListOf({stored, Obj("b", "y", "2")}, "5"));
  Informer inf(c, FastOptions());
  ASSERT_TRUE(RunUntil(inf, [&] { return inf.HasSynced(); }));
  auto first = inf.Get("a/x");
  auto second = inf.Get("a/x");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*first, stored);
  EXPECT_EQ(*second, stored);
  EXPECT_NE(first.get(), second.get());
  auto in_a = inf.ListNamespace("a");
  ASSERT_EQ(in_a.size(), 1U);
  EXPECT_EQ(*in_a[0], stored);
  EXPECT_EQ(inf.List().size(), 2U);
  EXPECT_EQ(inf.Get("a/missing"), nullptr);
}

// `keep` decides what is stored, from the list and from the watch; an object it stops keeping
// leaves the cache without a delete event (it left the cache's interest, not the cluster).
TEST(InformerTest, KeepStoresOnlyWhatItAccepts) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1"), Obj("tenant", "big", "2")}, "5"));
  Json leaving = Obj("a", "x", "12");
  leaving["metadata"]["labels"] = Json::object();
  leaving["metadata"]["labels"]["drop"] = Json::string("yes");
  c.watches.push_back({{Ev(WatchEvent::Type::kAdded, Obj("tenant", "more", "11")),
                        Ev(WatchEvent::Type::kModified, leaving),
                        Ev(WatchEvent::Type::kAdded, Obj("a", "y", "13"))},
                       Status(StatusCode::kCancelled, "")});
  auto opts = FastOptions();
  opts.keep = [](const Json& o) {
    const Json& meta = o.at("metadata");
    return MetaString(o, "namespace") == "a" && !meta.has_field("labels");
  };
  Informer inf(c, opts);
  Recorder rec;
  inf.AddHandlers(rec.Handlers());
  ASSERT_TRUE(RunUntil(inf, [&] { return inf.Get("a/y") != nullptr; }));
  EXPECT_EQ(rec.Get(), (std::vector<std::string>{"add a/x", "add a/y"}));
  EXPECT_EQ(inf.Get("tenant/big"), nullptr);
  EXPECT_EQ(inf.Get("tenant/more"), nullptr);
  EXPECT_EQ(inf.Get("a/x"), nullptr) << "no longer kept: dropped";
  EXPECT_EQ(inf.Size(), 1u);
  EXPECT_EQ(inf.last_resource_version(), "13") << "refused events still advance the resume point";
}

// Prune drops what `keep` refuses now, and nothing else, and tells no handler.
TEST(InformerTest, PruneDropsWhatKeepNoLongerAccepts) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1"), Obj("b", "y", "2")}, "5"));
  std::atomic<bool> keep_b{true};
  auto opts = FastOptions();
  opts.keep = [&keep_b](const Json& o) { return MetaString(o, "namespace") == "a" || keep_b; };
  Informer inf(c, opts);
  Recorder rec;
  inf.AddHandlers(rec.Handlers());
  ASSERT_TRUE(RunUntil(inf, [&] { return inf.HasSynced(); }));
  EXPECT_EQ(inf.Prune(), 0u);
  keep_b = false;
  EXPECT_EQ(inf.Prune(), 1u);
  EXPECT_EQ(inf.Get("b/y"), nullptr);
  EXPECT_NE(inf.Get("a/x"), nullptr);
  EXPECT_EQ(rec.Get().size(), 2u) << "the two adds of the list only";
}

// An informer running over an empty list (resourceVersion 5) and one watch that delivers `events`
// only once Open: a test takes a Mark before and knows which changes came after it.
struct GatedWatch {
  ScriptedClient client;
  std::atomic<bool> opened{false};
  std::unique_ptr<Informer> inf;
  CancelToken cancel;
  std::thread run;

  GatedWatch(std::vector<WatchEvent> events, const InformerOptions& opts) {
    client.lists.emplace_back(ListOf({}, "5"));
    client.watches.push_back({std::move(events), Status(StatusCode::kCancelled, "")});
    client.before_watch = [this] {
      while (!opened) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    inf = std::make_unique<Informer>(client, opts);
    run = std::thread([this] { inf->Run(cancel); });
  }
  GatedWatch(const GatedWatch&) = delete;
  GatedWatch& operator=(const GatedWatch&) = delete;
  ~GatedWatch() {
    opened = true;
    cancel.Cancel();
    run.join();
  }
  // The Mark after the list; then the events are delivered, up to resourceVersion `rv`.
  std::uint64_t MarkThenDeliver(const std::string& rv) {
    EXPECT_TRUE(inf->WaitForSync(cancel, std::chrono::seconds(5)));
    const std::uint64_t mark = inf->Mark();
    opened = true;
    for (int i = 0; i < 5000 && inf->last_resource_version() != rv; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(inf->last_resource_version(), rv);
    return mark;
  }
};

// Offer fills the cache with an object read from the API server that the watch has not brought
// (it became interesting after its last change), without ever replacing what the watch brought
// or resurrecting an object whose deletion the cache may have seen since the read began.
TEST(InformerTest, OfferAddsOnlyWhatTheCacheLacksAndCannotResurrect) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "x", "1")}, "5"));
  auto opts = FastOptions();
  opts.keep = [](const Json& o) { return MetaString(o, "namespace") != "tenant"; };
  opts.transform = [](Json&& o) {
    o["metadata"].erase("managedFields");
    return std::move(o);
  };
  Informer inf(c, opts);
  {
    CancelToken cancel;
    std::thread t([&] { inf.Run(cancel); });
    ASSERT_TRUE(inf.WaitForSync(cancel, std::chrono::seconds(5)));
    cancel.Cancel();
    t.join();
  }
  const std::uint64_t mark = inf.Mark();
  inf.Offer(Obj("a", "y", "3"), mark);
  ASSERT_NE(inf.Get("a/y"), nullptr);
  EXPECT_FALSE(inf.Get("a/y")->at("metadata").has_field("managedFields")) << "transformed";
  inf.Offer(Obj("a", "x", "0"), mark);
  EXPECT_EQ(MetaString(*inf.Get("a/x"), "resourceVersion"), "1") << "the cached one stays";
  inf.Offer(Obj("tenant", "z", "4"), mark);
  EXPECT_EQ(inf.Get("tenant/z"), nullptr) << "not kept";

  // A delete of an object the cache did not hold arrives while a read is in flight: that read
  // may be of the deleted object, so it is not taken.
  GatedWatch g({Ev(WatchEvent::Type::kDeleted, Obj("a", "gone", "7"))}, opts);
  const std::uint64_t before = g.MarkThenDeliver("7");  // a read of a/gone began before
  g.inf->Offer(Obj("a", "gone", "6"), before);
  EXPECT_EQ(g.inf->Get("a/gone"), nullptr) << "a stale read resurrected a deleted object";
  g.inf->Offer(Obj("a", "gone", "8"), g.inf->Mark());
  EXPECT_NE(g.inf->Get("a/gone"), nullptr) << "a read begun after the delete is taken";
}

// With offers_follow_interest, a deletion that keep refuses (another tenant's pod, in a cache of
// a few pods out of many) does not make an offer refused; one that keep accepts still does.
TEST(InformerTest, OffersFollowingInterestAreNotRefusedForOthersDeletions) {
  auto opts = FastOptions();
  opts.keep = [](const Json& o) { return MetaString(o, "namespace") != "tenant"; };
  for (const bool follow : {false, true}) {
    opts.offers_follow_interest = follow;
    {
      GatedWatch g({Ev(WatchEvent::Type::kDeleted, Obj("tenant", "other", "7")),
                    Ev(WatchEvent::Type::kDeleted, Obj("b", "watched", "8"))},
                   opts);
      const std::uint64_t before = g.MarkThenDeliver("8");
      g.inf->Offer(Obj("b", "watched", "6"), before);
      EXPECT_EQ(g.inf->Get("b/watched"), nullptr)
          << "a deletion keep accepts still refuses the offer";
    }
    // Only the tenant's deletion came after the mark.
    GatedWatch g({Ev(WatchEvent::Type::kDeleted, Obj("tenant", "other", "7"))}, opts);
    const std::uint64_t mark = g.MarkThenDeliver("7");
    g.inf->Offer(Obj("a", "new", "6"), mark);
    EXPECT_EQ(g.inf->Get("a/new") != nullptr, follow)
        << (follow ? "an unrelated deletion refused the offer"
                   : "without the option, any unseen deletion refuses it");
  }
}

// PruneWithPrefix re-asks keep only of the objects under the prefix; ListPrefix reads them.
TEST(InformerTest, PruneAndListWithAPrefixTouchOnlyThoseKeys) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("a", "web-1", "1"), Obj("a", "web-api-1", "2"),
                               Obj("a", "db-1", "3"), Obj("b", "web-1", "4")},
                              "5"));
  std::atomic<bool> keep_web{true};
  std::atomic<int> asked{0};
  auto opts = FastOptions();
  opts.keep = [&](const Json& o) {
    ++asked;
    return keep_web || MetaString(o, "name").rfind("web-", 0) != 0;
  };
  Informer inf(c, opts);
  ASSERT_TRUE(RunUntil(inf, [&] { return inf.HasSynced(); }));
  EXPECT_EQ(inf.ListPrefix("a/web-").size(), 2u) << "web-1 and web-api-1";
  EXPECT_EQ(inf.ListPrefix("a/db-").size(), 1u);
  keep_web = false;
  asked = 0;
  EXPECT_EQ(inf.PruneWithPrefix("a/web-"), 2u);
  EXPECT_EQ(asked.load(), 2) << "only the objects under the prefix are asked again";
  EXPECT_EQ(inf.Get("a/web-1"), nullptr);
  EXPECT_NE(inf.Get("b/web-1"), nullptr) << "another namespace's object is not touched";
  EXPECT_NE(inf.Get("a/db-1"), nullptr);
}

TEST(InformerTest, WatchTimeoutRandomisedBetween5And10Minutes) {
  ScriptedClient c;
  double r = 0;
  auto opts = FastOptions();
  opts.random01 = [&] { return r; };
  Informer inf(c, opts);
  EXPECT_EQ(inf.NextWatchTimeout(), std::chrono::seconds(300));
  r = 0.5;
  EXPECT_EQ(inf.NextWatchTimeout(), std::chrono::seconds(450));
  r = 0.9999999;
  EXPECT_EQ(inf.NextWatchTimeout(), std::chrono::seconds(599));
}

// Every watch asks for bookmarks and carries the progress bound: a watch silent for longer (a
// half-open connection) is ended by the client and resumed.
TEST(InformerTest, WatchesCarryTheProgressBound) {
  ScriptedClient c;
  c.lists.emplace_back(ListOf({}, "5"));
  c.watches.push_back({{}, Status(StatusCode::kTimeout, "no data within 150000ms")});
  Informer inf(c, FastOptions());
  ASSERT_TRUE(RunUntil(inf, [&] {
    std::lock_guard<std::mutex> l(c.mu);
    return c.watch_calls.size() >= 2;
  }));
  std::lock_guard<std::mutex> l(c.mu);
  EXPECT_TRUE(c.watch_calls[0].allow_bookmarks);
  EXPECT_EQ(c.watch_calls[0].progress_timeout, std::chrono::seconds(150));
  EXPECT_EQ(c.watch_calls[1].resource_version, "5") << "a stalled watch resumes where it was";
  EXPECT_EQ(inf.watch_restarts(), 1u);
}

// /healthz reads Stalled(): a cache that has heard nothing (no list, event or bookmark) for longer
// than the bound is stalled; anything from the server makes it fresh again; an informer that is
// not running (a standby replica) is never stalled.
TEST(InformerTest, StalledWhenNothingArrivesForLongerThanTheBound) {
  testing::FakeClock clock;
  ScriptedClient c;
  c.lists.emplace_back(ListOf({Obj("t", "a", "1")}, "5"));
  auto opts = FastOptions();
  opts.clock = &clock;
  Informer inf(c, opts);
  clock.Advance(std::chrono::hours(1));
  EXPECT_EQ(inf.Stalled(std::chrono::seconds(300)), std::nullopt) << "not running";

  CancelToken cancel;
  std::thread t([&] { inf.Run(cancel); });
  ASSERT_TRUE(inf.WaitForSync(cancel, std::chrono::seconds(5)));
  EXPECT_EQ(inf.Stalled(std::chrono::seconds(300)), std::nullopt);
  clock.Advance(std::chrono::seconds(301));  // the idle scripted watch delivers nothing
  auto why = inf.Stalled(std::chrono::seconds(300));
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("for 301s"), std::string::npos) << *why;
  EXPECT_NE(why->find("deployments"), std::string::npos) << *why;
  cancel.Cancel();
  t.join();
}

TEST(InformerTest, WaitForSyncHonoursCancelAndTimeout) {
  ScriptedClient c;
  Informer inf(c, FastOptions());
  CancelToken cancel;
  EXPECT_FALSE(inf.WaitForSync(cancel, std::chrono::milliseconds(20)));
  cancel.Cancel();
  EXPECT_FALSE(inf.WaitForSync(cancel, std::chrono::seconds(10)));
}

}  // namespace
}  // namespace rollgate::kube
