// Tests of the JSON codec for ContainerRollouts, Deployments and Namespaces: the status survives
// an encode/decode round trip (the planner's restart safety depends on it), API-server shapes
// decode with their defaults, wrong shapes are reported by field, and the spec hash only follows
// spec.images and spec.environments.
// Thread-safety: single-threaded tests.
#include "controller/api/codec.h"

#include <gtest/gtest.h>

#include <string>

namespace rollgate::api {
namespace {

using std::chrono::seconds;

const WallTime kT0 = std::chrono::system_clock::from_time_t(1'800'000'000);

Json Parse(const std::string& s) { return Json::parse(s); }

Json RolloutJson(const std::string& spec, const std::string& extra_meta = "") {
  return Parse(R"({"apiVersion":"rollgate.io/v1alpha1","kind":"ContainerRollout",
    "metadata":{"name":"r","namespace":"app","uid":"u1","generation":3,"resourceVersion":"42")" +
               extra_meta + R"(},"spec":)" + spec + "}");
}

constexpr char kSpec[] = R"({
  "images":{"backend":"registry.example.com/app/backend:2.0.0",
            "worker-gpu":"registry.example.com/app/worker-gpu:2.0.0"},
  "environments":[
    {"name":"dev","targets":[{"deployment":"api","containers":{"api":"backend"}}]},
    {"name":"canary","namespace":"app-prod","approval":"Manual","bakeSeconds":300,
     "targets":[{"deployment":"worker","containers":{"worker":"worker-gpu"},
                 "workerValidation":{"cuda":"Required","command":["python","-c","x"]}}],
     "analysis":{"prometheus":{"address":"http://prom:9090"},
                 "checks":[{"name":"error-rate","query":"q","max":0.01}],"samples":5}}],
  "rollback":"None","paused":true})";

RolloutStatus FullStatus() {
  RolloutStatus s;
  s.observed_generation = 3;
  s.revision = 2;
  s.phase = RolloutPhase::kRollingBack;
  s.current_environment = "canary";
  s.message = "environment canary failed";
  s.spec_hash = "0123456789abcdef";
  s.handled_annotations = {{"rollgate.io/promote", "v1"}, {"rollgate.io/abort", "a"}};
  EnvironmentStatus dev;
  dev.name = "dev";
  dev.phase = EnvironmentPhase::kSucceeded;
  dev.started_at = kT0;
  dev.verified_at = kT0 + seconds(30);
  dev.finished_at = kT0 + seconds(31);
  dev.reason = "Succeeded";
  dev.attempts = 2;
  TargetStatus t;
  t.deployment = "api";
  t.namespace_ = "app";
  t.previous_images = {{"api", "registry.example.com/app/backend:1.9.0"}};
  t.previous_init_containers = {{"rollgate-validate", "registry.example.com/v:0.0.9"}};
  t.previous_validation_label = "1";
  t.replicas = 3;
  t.updated_replicas = 2;
  t.ready_replicas = 1;
  t.available_replicas = 1;
  dev.targets.push_back(t);
  dev.validation = ValidationStatus{2, 1, 1, "pod x: CUDA_ERROR_NO_DEVICE"};
  AnalysisStatus a;
  a.samples = 3;
  a.passed = 1;
  a.failed = 1;
  a.inconclusive = 1;
  a.last_sample_at = kT0 + seconds(90);
  a.last_value = "0.2";
  a.message = "error-rate: 0.2 > 0.01";
  dev.analysis = a;
  s.environments.push_back(dev);
  EnvironmentStatus canary;
  canary.name = "canary";
  canary.phase = EnvironmentPhase::kRollingBack;
  canary.approved_at = kT0 + seconds(100);
  s.environments.push_back(canary);
  s.conditions.push_back({"Ready", "False", "RollingBack", "m", 3, kT0});
  s.conditions.push_back({"Degraded", "True", "AnalysisFailed", "m", 3, kT0 + seconds(5)});
  return s;
}

RolloutStatus RoundTrip(const RolloutStatus& s) {
  Json obj = RolloutJson(kSpec);
  obj["status"] = EncodeStatus(s);
  auto r = DecodeRollout(obj);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value().status : RolloutStatus{};
}

TEST(CodecStatus, RoundTripKeepsEveryField) {
  const RolloutStatus s = FullStatus();
  const RolloutStatus back = RoundTrip(s);
  EXPECT_TRUE(back == s);
  EXPECT_EQ(back.revision, 2);
  EXPECT_EQ(back.phase, RolloutPhase::kRollingBack);
  EXPECT_EQ(back.spec_hash, s.spec_hash);
  EXPECT_EQ(back.handled_annotations, s.handled_annotations);
  ASSERT_EQ(back.environments.size(), 2u);
  const EnvironmentStatus& dev = back.environments[0];
  EXPECT_EQ(dev.started_at, kT0);
  EXPECT_EQ(dev.verified_at, kT0 + seconds(30));
  EXPECT_EQ(dev.finished_at, kT0 + seconds(31));
  EXPECT_EQ(dev.attempts, 2);
  ASSERT_EQ(dev.targets.size(), 1u);
  EXPECT_EQ(dev.targets[0].previous_images, s.environments[0].targets[0].previous_images);
  EXPECT_EQ(dev.targets[0].previous_init_containers,
            s.environments[0].targets[0].previous_init_containers);
  EXPECT_EQ(dev.targets[0].previous_validation_label, "1");
  EXPECT_EQ(dev.targets[0].namespace_, "app");
  EXPECT_EQ(dev.targets[0].updated_replicas, 2);
  ASSERT_TRUE(dev.validation.has_value());
  EXPECT_EQ(dev.validation->failed, 1);
  EXPECT_EQ(dev.validation->message, "pod x: CUDA_ERROR_NO_DEVICE");
  ASSERT_TRUE(dev.analysis.has_value());
  EXPECT_EQ(dev.analysis->inconclusive, 1);
  EXPECT_EQ(dev.analysis->last_sample_at, kT0 + seconds(90));
  EXPECT_EQ(back.environments[1].approved_at, kT0 + seconds(100));
  EXPECT_FALSE(back.environments[1].started_at.has_value());
  ASSERT_EQ(back.conditions.size(), 2u);
  EXPECT_EQ(back.conditions[1].last_transition_time, kT0 + seconds(5));
  EXPECT_EQ(back.conditions[1].reason, "AnalysisFailed");
}

TEST(CodecStatus, EqualityFollowsTheEncodedForm) {
  RolloutStatus a = FullStatus();
  RolloutStatus b = FullStatus();
  EXPECT_TRUE(a == b);
  b.environments[0].targets[0].previous_images["api"] = "other";
  EXPECT_FALSE(a == b);
  b = a;
  b.handled_annotations["rollgate.io/retry"] = "r";
  EXPECT_FALSE(a == b);
  // The API server stores seconds: a sub-second difference is no change.
  b = a;
  b.environments[0].started_at = kT0 + std::chrono::milliseconds(400);
  EXPECT_TRUE(a == b);
}

TEST(CodecStatus, EmptyStatusDecodesToDefaults) {
  auto r = DecodeRollout(RolloutJson(kSpec));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status.revision, 0);
  EXPECT_EQ(r->status.phase, RolloutPhase::kNone);
  EXPECT_TRUE(r->status.environments.empty());
  // An environment without a phase is Pending.
  Json obj = RolloutJson(kSpec);
  obj["status"] = Parse(R"({"revision":1,"environments":[{"name":"dev"}]})");
  auto r2 = DecodeRollout(obj);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r2->status.environments.size(), 1u);
  EXPECT_EQ(r2->status.environments[0].phase, EnvironmentPhase::kPending);
}

TEST(CodecTime, FormatAndParse) {
  EXPECT_EQ(FormatTime(kT0), "2027-01-15T08:00:00Z");
  EXPECT_EQ(ParseTime("2027-01-15T08:00:00Z"), kT0);
  EXPECT_EQ(FormatTime(kT0 + std::chrono::milliseconds(999)), "2027-01-15T08:00:00Z");
  EXPECT_FALSE(ParseTime("").has_value());
  EXPECT_FALSE(ParseTime("yesterday").has_value());
  EXPECT_EQ(ParseTime(FormatTime(WallTime{})), WallTime{});
}

TEST(CodecRollout, DecodesSpecWithDefaults) {
  auto r = DecodeRollout(RolloutJson(kSpec, R"(,"annotations":{"rollgate.io/promote":"v1"})"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->namespace_, "app");
  EXPECT_EQ(r->name, "r");
  EXPECT_EQ(r->uid, "u1");
  EXPECT_EQ(r->generation, 3);
  EXPECT_EQ(r->resource_version, "42");
  EXPECT_EQ(r->Key(), "app/r");
  EXPECT_EQ(r->annotations.at("rollgate.io/promote"), "v1");
  const RolloutSpec& s = r->spec;
  EXPECT_EQ(s.images.size(), 2u);
  EXPECT_FALSE(s.automatic_rollback);
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(s.progress_deadline_seconds, 600);
  ASSERT_EQ(s.environments.size(), 2u);
  const EnvironmentSpec& dev = s.environments[0];
  EXPECT_EQ(dev.namespace_, "");
  EXPECT_FALSE(dev.manual_approval);
  EXPECT_EQ(dev.bake_seconds, 0);
  EXPECT_FALSE(dev.analysis.has_value());
  EXPECT_EQ(dev.targets[0].containers.at("api"), "backend");
  EXPECT_FALSE(dev.targets[0].worker_validation.has_value());
  const EnvironmentSpec& canary = s.environments[1];
  EXPECT_EQ(canary.namespace_, "app-prod");
  EXPECT_TRUE(canary.manual_approval);
  EXPECT_EQ(canary.bake_seconds, 300);
  ASSERT_TRUE(canary.targets[0].worker_validation.has_value());
  EXPECT_TRUE(canary.targets[0].worker_validation->cuda_required);
  EXPECT_EQ(canary.targets[0].worker_validation->command,
            (std::vector<std::string>{"python", "-c", "x"}));
  ASSERT_TRUE(canary.analysis.has_value());
  EXPECT_EQ(canary.analysis->prometheus_address, "http://prom:9090");
  EXPECT_EQ(canary.analysis->interval_seconds, 30);
  EXPECT_EQ(canary.analysis->samples, 5);
  ASSERT_EQ(canary.analysis->checks.size(), 1u);
  EXPECT_FALSE(canary.analysis->checks[0].min.has_value());
  EXPECT_EQ(canary.analysis->checks[0].max, 0.01);

  auto automatic = DecodeRollout(RolloutJson(R"({"images":{},"environments":[]})"));
  ASSERT_TRUE(automatic.ok());
  EXPECT_TRUE(automatic->spec.automatic_rollback);
  EXPECT_FALSE(automatic->spec.paused);
}

TEST(CodecRollout, WrongShapesNameTheField) {
  struct Case {
    std::string label;
    Json obj;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"no metadata", Parse(R"({"spec":{"environments":[]}})"), "metadata"},
      {"no spec", Parse(R"({"metadata":{"name":"r"}})"), "spec"},
      {"environments not a list", RolloutJson(R"({"environments":{}})"), "spec.environments"},
      {"environment not an object", RolloutJson(R"({"environments":[1]})"), "spec.environments[0]"},
      {"targets not a list", RolloutJson(R"({"environments":[{"name":"dev","targets":"api"}]})"),
       "spec.environments[0].targets"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    auto r = DecodeRollout(c.obj);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
}

TEST(CodecDeployment, DecodesTemplateAndRolloutState) {
  auto d = DecodeDeployment(Parse(R"({
    "metadata":{"name":"worker","namespace":"app","generation":4,
                "annotations":{"rollgate.io/revision":"2"}},
    "spec":{"replicas":3,"selector":{"matchLabels":{"app":"worker"}},
      "template":{"metadata":{"labels":{"app":"worker","rollgate.io/validation":"2"}},
        "spec":{"initContainers":[{"name":"rollgate-validate","image":"v:1"}],
          "containers":[
            {"name":"worker","image":"w:2","resources":{"limits":{"nvidia.com/gpu":"1"}}},
            {"name":"shipper","image":"s:7","resources":{"requests":{"cpu":"100m"}}},
            {"name":"zero","image":"z:1","resources":{"limits":{"nvidia.com/gpu":0}}}]}}},
    "status":{"observedGeneration":3,"replicas":4,"updatedReplicas":1,"readyReplicas":3,
      "availableReplicas":3,"conditions":[
        {"type":"Available","status":"True"},
        {"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded"}]}})"));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->Key(), "app/worker");
  EXPECT_EQ(d->generation, 4);
  EXPECT_EQ(d->observed_generation, 3);
  EXPECT_EQ(d->spec_replicas, 3);
  EXPECT_EQ(d->replicas, 4);
  EXPECT_EQ(d->updated_replicas, 1);
  EXPECT_EQ(d->ready_replicas, 3);
  EXPECT_EQ(d->available_replicas, 3);
  EXPECT_TRUE(d->progress_deadline_exceeded);
  EXPECT_EQ(d->container_images, (std::map<std::string, std::string>{
                                     {"worker", "w:2"}, {"shipper", "s:7"}, {"zero", "z:1"}}));
  EXPECT_EQ(d->init_container_images,
            (std::map<std::string, std::string>{{"rollgate-validate", "v:1"}}));
  EXPECT_EQ(d->gpu_requests, (std::map<std::string, std::string>{{"worker", "1"}}));
  EXPECT_EQ(d->template_labels.at("rollgate.io/validation"), "2");
  EXPECT_EQ(d->annotations.at("rollgate.io/revision"), "2");
  EXPECT_EQ(d->selector, (std::map<std::string, std::string>{{"app", "worker"}}));

  // Another extended resource name.
  auto amd =
      DecodeDeployment(Parse(R"({"metadata":{"name":"w"},"spec":{"template":{"spec":{"containers":[
        {"name":"worker","image":"w","resources":{"limits":{"amd.com/gpu":2}}}]}}}})"),
                       "amd.com/gpu");
  ASSERT_TRUE(amd.ok());
  EXPECT_EQ(amd->gpu_requests.at("worker"), "2");
  EXPECT_EQ(amd->spec_replicas, 1);  // default
  EXPECT_FALSE(amd->progress_deadline_exceeded);
}

TEST(CodecDeployment, ProgressingConditionOtherThanTimeoutIsNotAFailure) {
  auto d = DecodeDeployment(Parse(R"({"metadata":{"name":"w"},"spec":{},
    "status":{"conditions":[
      {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]}})"));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->progress_deadline_exceeded);
  EXPECT_FALSE(DecodeDeployment(Parse(R"({"spec":{}})")).ok());
  EXPECT_FALSE(DecodeDeployment(Parse(R"({"metadata":{"name":"w"}})")).ok());
}

// The caches keep api::Trim* of each object: every decoder must read the same from the trimmed
// object as from the whole one, and what a tenant adds (annotations, env, volumes, sidecar
// settings) must not be kept.
std::string RichDeployment(const std::string& notes) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"worker","namespace":"app","uid":"d1","generation":4,"resourceVersion":"77",
      "labels":{"team":"ml"},
      "managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}],
      "annotations":{"rollgate.io/revision":"2","rollgate.io/owner":"app/r",
        "deployment.kubernetes.io/revision":"9","notes":")" +
         notes + R"("}},
    "spec":{"replicas":3,"selector":{"matchLabels":{"app":"worker"}},
      "strategy":{"type":"RollingUpdate"},
      "template":{"metadata":{"labels":{"app":"worker","rollgate.io/validation":"2"},
          "annotations":{"big":")" +
         notes + R"("}},
        "spec":{"volumes":[{"name":"data","emptyDir":{}}],
          "nodeSelector":{"kubernetes.io/arch":"arm64","kubernetes.io/os":"linux","disk":"ssd"},
          "affinity":{"podAntiAffinity":{"x":1},"nodeAffinity":{
            "preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1}],
            "requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
              {"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In",
                                    "values":["amd64","arm64"]}]}]}}},
          "initContainers":[{"name":"rollgate-validate","image":"v:1","args":["--x"]}],
          "containers":[
            {"name":"worker","image":"w:2","env":[{"name":"NOTES","value":")" +
         notes + R"("}],
             "securityContext":{"runAsNonRoot":true},
             "resources":{"limits":{"nvidia.com/gpu":"1","cpu":"2"},"requests":{"cpu":"1"},
                          "claims":[{"name":"c"}]}},
            {"name":"shipper","image":"s:7","command":["ship"]}]}}},
    "status":{"observedGeneration":3,"replicas":4,"updatedReplicas":1,"readyReplicas":3,
      "availableReplicas":3,"conditions":[
        {"type":"Available","status":"True","message":"ok"},
        {"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded",
         "message":"timed out"}]}})";
}

void ExpectSameView(const DeploymentView& a, const DeploymentView& b) {
  EXPECT_EQ(a.Key(), b.Key());
  EXPECT_EQ(a.generation, b.generation);
  EXPECT_EQ(a.observed_generation, b.observed_generation);
  EXPECT_EQ(a.spec_replicas, b.spec_replicas);
  EXPECT_EQ(a.replicas, b.replicas);
  EXPECT_EQ(a.updated_replicas, b.updated_replicas);
  EXPECT_EQ(a.ready_replicas, b.ready_replicas);
  EXPECT_EQ(a.available_replicas, b.available_replicas);
  EXPECT_EQ(a.progress_deadline_exceeded, b.progress_deadline_exceeded);
  EXPECT_EQ(a.container_images, b.container_images);
  EXPECT_EQ(a.init_container_images, b.init_container_images);
  EXPECT_EQ(a.gpu_requests, b.gpu_requests);
  ASSERT_EQ(a.gpu_container_settings.size(), b.gpu_container_settings.size());
  for (const auto& [name, s] : a.gpu_container_settings) {
    const ContainerSettings& o = b.gpu_container_settings.at(name);
    EXPECT_EQ(s.security_context_json, o.security_context_json) << name;
    EXPECT_EQ(s.requests, o.requests) << name;
    EXPECT_EQ(s.limits, o.limits) << name;
  }
  EXPECT_EQ(a.template_labels, b.template_labels);
  EXPECT_EQ(a.node_archs, b.node_archs);
  EXPECT_EQ(a.node_os, b.node_os);
  EXPECT_EQ(a.selector, b.selector);
  EXPECT_EQ(a.resource_version, b.resource_version);
}

TEST(CodecTrim, ATrimmedDeploymentDecodesToTheSameView) {
  const Json whole = Parse(RichDeployment("n"));
  auto full = DecodeDeployment(whole);
  auto trimmed = DecodeDeployment(TrimDeployment(Json(whole)));
  ASSERT_TRUE(full.ok() && trimmed.ok());
  ExpectSameView(*full, *trimmed);
  EXPECT_TRUE(trimmed->progress_deadline_exceeded);
  EXPECT_EQ(trimmed->node_archs, std::vector<std::string>{"arm64"});
  EXPECT_EQ(trimmed->node_os, "linux");
  EXPECT_EQ(trimmed->gpu_container_settings.at("worker").limits.at("cpu"), "2");
  // Rollgate's annotations stay; every other annotation goes.
  EXPECT_EQ(trimmed->annotations,
            (std::map<std::string, std::string>{{"rollgate.io/owner", "app/r"},
                                                {"rollgate.io/revision", "2"}}));
}

TEST(CodecTrim, ADeploymentCostsTheSameWhateverATenantPutsIntoIt) {
  const std::string small = TrimDeployment(Parse(RichDeployment("n"))).serialize();
  const std::string big =
      TrimDeployment(Parse(RichDeployment(std::string(std::size_t{200} * 1024, 'x')))).serialize();
  EXPECT_EQ(big, small) << "200 KiB of annotations and env must not reach the cache";
  EXPECT_LT(small.size(), 1280u) << small;  // with an arch nodeSelector and affinity
  for (const char* gone :
       {"managedFields", "notes", "strategy", "volumes", "env", "command", "args", "claims",
        "\"team\"", "timed out", "Available", "ssd", "podAntiAffinity", "preferred"}) {
    EXPECT_EQ(small.find(gone), std::string::npos) << gone << " in " << small;
  }
}

TEST(CodecTrim, ATrimmedRolloutKeepsSpecStatusAndOperationAnnotations) {
  Json whole = RolloutJson(
      kSpec, R"(,"labels":{"a":"b"},"managedFields":[{"manager":"kubectl"}],"annotations":{
        "rollgate.io/promote":"canary","kubectl.kubernetes.io/last-applied-configuration":"{}"})");
  whole["status"] = EncodeStatus(FullStatus());
  auto full = DecodeRollout(whole);
  const Json trimmed_json = TrimRollout(Json(whole));
  auto trimmed = DecodeRollout(trimmed_json);
  ASSERT_TRUE(full.ok() && trimmed.ok());
  EXPECT_EQ(trimmed->Key(), full->Key());
  EXPECT_EQ(trimmed->uid, "u1");
  EXPECT_EQ(trimmed->generation, 3);
  EXPECT_EQ(trimmed->resource_version, "42");
  EXPECT_EQ(trimmed->status, full->status);
  EXPECT_EQ(SpecHash(trimmed_json), SpecHash(whole));
  EXPECT_EQ(trimmed->annotations,
            (std::map<std::string, std::string>{{"rollgate.io/promote", "canary"}}));
  // The status write sends the cached object back: it must still name its kind.
  EXPECT_EQ(trimmed_json.at("kind").as_string(), "ContainerRollout");
  EXPECT_EQ(trimmed_json.serialize().find("managedFields"), std::string::npos);
}

TEST(CodecTrim, ATrimmedNamespaceKeepsItsLabels) {
  const Json whole = Parse(
      R"({"metadata":{"name":"app-prod","annotations":{"big":"x"},"managedFields":[{}],
      "labels":{"rollgate.io/allow-rollouts-from":"app"}},"spec":{"finalizers":["kubernetes"]}})");
  const Json trimmed = TrimNamespace(Json(whole));
  NamespaceView n = DecodeNamespace(trimmed);
  EXPECT_EQ(n.name, "app-prod");
  EXPECT_EQ(n.labels.at("rollgate.io/allow-rollouts-from"), "app");
  EXPECT_EQ(
      trimmed.serialize(),
      R"({"metadata":{"labels":{"rollgate.io/allow-rollouts-from":"app"},"name":"app-prod"}})");
}

TEST(CodecNamespace, DecodesLabels) {
  NamespaceView n = DecodeNamespace(Parse(
      R"({"metadata":{"name":"app-prod","labels":{"rollgate.io/allow-rollouts-from":"app"}}})"));
  EXPECT_EQ(n.name, "app-prod");
  EXPECT_EQ(n.labels.at("rollgate.io/allow-rollouts-from"), "app");
  EXPECT_TRUE(DecodeNamespace(Parse("{}")).labels.empty());
}

TEST(CodecSpecHash, IsTheFullSha256InHex) {
  const std::string h = SpecHash(RolloutJson(kSpec));
  ASSERT_EQ(h.size(), 64u) << h;
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
}

TEST(CodecSpecHash, ALegacyShortHashMatchesOnlyItsOwnPrefix) {
  const std::string h = SpecHash(RolloutJson(kSpec));
  EXPECT_TRUE(SameSpecHash(h, h));
  EXPECT_TRUE(SameSpecHash(h.substr(0, kLegacySpecHashLength), h));
  EXPECT_FALSE(SameSpecHash(h.substr(0, kLegacySpecHashLength - 1), h)) << "only 0.1's length";
  EXPECT_FALSE(SameSpecHash(h.substr(0, 32), h)) << "only 0.1's length";
  std::string other = h.substr(0, kLegacySpecHashLength);
  other[0] = other[0] == '0' ? '1' : '0';
  EXPECT_FALSE(SameSpecHash(other, h));
  EXPECT_FALSE(SameSpecHash("", h));
}

TEST(CodecSpecHash, FollowsImagesAndEnvironmentsOnly) {
  const Json base = RolloutJson(kSpec);
  const std::string h = SpecHash(base);
  EXPECT_EQ(h.size(), 64u) << "the full SHA-256";
  EXPECT_EQ(SpecHash(RolloutJson(kSpec)), h);

  Json status = base;
  status["status"] = EncodeStatus(FullStatus());
  EXPECT_EQ(SpecHash(status), h);
  Json meta = RolloutJson(kSpec, R"(,"annotations":{"rollgate.io/abort":"x"})");
  EXPECT_EQ(SpecHash(meta), h);
  Json paused = base;
  paused["spec"]["paused"] = Json::boolean(false);
  paused["spec"]["progressDeadlineSeconds"] = Json::number(60);
  EXPECT_EQ(SpecHash(paused), h) << "pausing or a new deadline is not a new revision";

  Json image = base;
  image["spec"]["images"]["backend"] = Json::string("registry.example.com/app/backend:2.0.1");
  EXPECT_NE(SpecHash(image), h);
  Json envs = base;
  envs["spec"]["environments"][0]["bakeSeconds"] = Json::number(60);
  EXPECT_NE(SpecHash(envs), h);
}

// ---- bounded status (a 422 from the API server must not be possible for a long message) ----

TEST(CodecBounds, BoundedKeepsShortTextAndCutsLongTextWithAMark) {
  EXPECT_EQ(Bounded("short", 64), "short");
  const std::string cut = Bounded(std::string(100, 'x'), 32);
  EXPECT_EQ(cut.size(), 32u);
  EXPECT_EQ(cut, std::string(18, 'x') + "...(truncated)");
}

TEST(CodecBounds, BoundedNeverSplitsAUtf8Character) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "\xc3\xa9";  // é, two bytes
  for (std::size_t max : {20u, 21u, 33u}) {
    const std::string cut = Bounded(text, max);
    ASSERT_LE(cut.size(), max);
    const std::string body = cut.substr(0, cut.find("..."));
    EXPECT_EQ(body.size() % 2, 0u) << "split after " << body.size() << " bytes (max " << max << ")";
  }
}

TEST(CodecBounds, EveryStatusStringIsBoundedWellInsideTheCrdLimits) {
  const std::string huge(std::size_t{100} * 1024, 'p');
  RolloutStatus s;
  s.message = huge;
  EnvironmentStatus e;
  e.name = "dev";
  e.reason = huge;
  e.message = huge;
  e.validation = ValidationStatus{1, 0, 1, huge};
  e.analysis = AnalysisStatus{};
  e.analysis->last_value = huge;
  e.analysis->message = huge;
  s.environments.push_back(e);
  s.conditions.push_back(Condition{"Ready", "False", "Failed", huge, 1, {}});
  const Json j = EncodeStatus(s);
  EXPECT_EQ(j.at("message").as_string().size(), kMaxMessage);
  const Json& je = j.at("environments").at(0);
  EXPECT_EQ(je.at("reason").as_string().size(), kMaxReason);
  EXPECT_EQ(je.at("message").as_string().size(), kMaxMessage);
  EXPECT_EQ(je.at("validation").at("message").as_string().size(), kMaxMessage);
  EXPECT_EQ(je.at("analysis").at("lastValue").as_string().size(), kMaxValue);
  EXPECT_EQ(je.at("analysis").at("message").as_string().size(), kMaxMessage);
  EXPECT_EQ(j.at("conditions").at(0).at("message").as_string().size(), kMaxMessage);
  EXPECT_LE(j.serialize().size(), 8 * kMaxMessage);
}

TEST(CodecBounds, LongHandledAnnotationValuesAreRecordedAsTheirHash) {
  EXPECT_EQ(HandledValue("2026-12-01"), "2026-12-01");
  const std::string long_value(2000, 'v');
  const std::string h = HandledValue(long_value);
  EXPECT_EQ(h.rfind("sha256:", 0), 0u);
  EXPECT_EQ(h.size(), 7u + 64u);
  EXPECT_EQ(h, HandledValue(long_value)) << "stable, so a handled value is recognised";
  EXPECT_NE(h, HandledValue(long_value + "x"));
}

// The architectures a pod template can be scheduled on, as the registry pre-flight reads them.
std::vector<std::string> Archs(const std::string& pod_spec) {
  auto d = DecodeDeployment(Parse(R"({"metadata":{"name":"d","namespace":"n"},
    "spec":{"template":{"spec":)" +
                                  pod_spec + "}}}"));
  EXPECT_TRUE(d.ok());
  return d.ok() ? d->node_archs : std::vector<std::string>{"<error>"};
}

TEST(CodecDeployment, NodeArchitecturesComeFromTheSelectorAndTheRequiredAffinity) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Archs(R"({"containers":[]})"), V{});
  EXPECT_EQ(Archs(R"({"nodeSelector":{"kubernetes.io/arch":"s390x"}})"), V{"s390x"});
  const std::string both_terms = R"({"affinity":{"nodeAffinity":{
    "requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
      {"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["arm64"]}]},
      {"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64"]}]}]}}}})";
  EXPECT_EQ(Archs(both_terms), (V{"amd64", "arm64"})) << "terms are ORed";
  const std::string open_term = R"({"affinity":{"nodeAffinity":{
    "requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
      {"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["arm64"]}]},
      {"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}]}}}})";
  EXPECT_EQ(Archs(open_term), V{}) << "a term without an arch constraint allows any";
  const std::string not_in = R"({"affinity":{"nodeAffinity":{
    "requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
      {"matchExpressions":[{"key":"kubernetes.io/arch","operator":"NotIn","values":["arm64"]}]}]}}}})";
  EXPECT_EQ(Archs(not_in), V{}) << "only In narrows it";
}

TEST(CodecRollout, AnEnvironmentInARemoteClusterIsScopedByItsSecret) {
  auto r = DecodeRollout(RolloutJson(R"({"images":{"b":"r/b:1"},"environments":[
    {"name":"dev","targets":[{"deployment":"api","containers":{"api":"b"}}]},
    {"name":"prod","cluster":{"secretRef":{"name":"prod-eu.example"}},
     "targets":[{"deployment":"api","containers":{"api":"b"}}]},
    {"name":"dr","namespace":"app-dr","cluster":{"secretRef":{"name":"dr"}},
     "targets":[{"deployment":"api","containers":{"api":"b"}}]}]})"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& envs = r->spec.environments;
  EXPECT_EQ(envs[0].cluster, "");
  EXPECT_EQ(EnvironmentNamespace(*r, envs[0]), "app");
  EXPECT_EQ(envs[1].cluster, "prod-eu.example");
  EXPECT_EQ(EnvironmentNamespace(*r, envs[1]), "prod-eu.example:app")
      << "the rollout's namespace name, in the remote cluster";
  EXPECT_EQ(EnvironmentNamespace(*r, envs[2]), "dr:app-dr");
  const NamespaceScope where = SplitScopedNamespace("prod-eu.example:app");
  EXPECT_EQ(where.cluster, "prod-eu.example");
  EXPECT_EQ(where.name, "app");
  EXPECT_EQ(SplitScopedNamespace("app").cluster, "");

  for (const char* bad : {R"({})", R"({"secretRef":{}})", R"({"secretRef":{"name":"a:b"}})"}) {
    auto refused = DecodeRollout(RolloutJson(
        std::string(R"({"images":{"b":"r/b:1"},"environments":[{"name":"dev","cluster":)") + bad +
        R"(,"targets":[{"deployment":"api","containers":{"api":"b"}}]}]})"));
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.status().message().find("spec.environments[0].cluster.secretRef.name"),
              std::string::npos)
        << refused.status().message();
  }
}

TEST(CodecStatus, ARemoteTargetIsRecordedAsClusterAndNamespace) {
  RolloutStatus s;
  EnvironmentStatus e;
  e.name = "prod";
  TargetStatus local;
  local.deployment = "api";
  local.namespace_ = "app";
  TargetStatus remote;
  remote.deployment = "api";
  remote.namespace_ = "prod-eu:app";
  remote.previous_images = {{"api", "r/api:1"}};
  e.targets = {local, remote};
  s.environments.push_back(e);
  const Json j = EncodeStatus(s);
  const Json& ts = j.at("environments").at(0).at("targets");
  EXPECT_FALSE(ts.at(0).has_field("cluster"));
  EXPECT_EQ(ts.at(0).at("namespace").as_string(), "app");
  EXPECT_EQ(ts.at(1).at("cluster").as_string(), "prod-eu");
  EXPECT_EQ(ts.at(1).at("namespace").as_string(), "app");
  const RolloutStatus back = RoundTrip(s);
  EXPECT_EQ(back.environments.at(0).targets.at(1).namespace_, "prod-eu:app");
  EXPECT_EQ(back.environments.at(0).targets.at(0).namespace_, "app");
}

TEST(CodecRollout, DecodesTheImagePolicy) {
  auto none = DecodeRollout(RolloutJson(R"({"images":{"a":"r.io/a:1"},"environments":[]})"));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->spec.image_policy.has_value());
  auto empty = DecodeRollout(
      RolloutJson(R"({"images":{"a":"r.io/a:1"},"environments":[],"imagePolicy":{}})"));
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE(empty->spec.image_policy.has_value());
  EXPECT_TRUE(empty->spec.image_policy->pin_digests) << "pinning is the default";
  auto full = DecodeRollout(RolloutJson(R"({"images":{"a":"r.io/a:1"},"environments":[],
    "imagePolicy":{"pinDigests":false,"platforms":["linux/amd64","linux/arm64/v8"],
                   "maxSize":{"a":"900Mi"}}})"));
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->spec.image_policy->pin_digests);
  EXPECT_EQ(full->spec.image_policy->platforms,
            (std::vector<std::string>{"linux/amd64", "linux/arm64/v8"}));
  EXPECT_EQ(full->spec.image_policy->max_size.at("a"), "900Mi");
  auto wrong = DecodeRollout(
      RolloutJson(R"({"images":{"a":"r.io/a:1"},"environments":[],"imagePolicy":"yes"})"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("spec.imagePolicy"), std::string::npos);
}

TEST(CodecStatus, ResolvedImagesRoundTrip) {
  RolloutStatus s;
  s.phase = RolloutPhase::kProgressing;
  ResolvedImage r;
  r.name = "worker-gpu";
  r.reference = "registry.example.com/app/worker-gpu:2.0.0";
  r.digest = "sha256:" + std::string(64, 'a');
  r.media_type = "application/vnd.oci.image.index.v1+json";
  r.size = 9'000'000'000;
  r.platforms = {{"linux/amd64", "sha256:" + std::string(64, 'b'), 9'000'000'000},
                 {"linux/arm64/v8", "sha256:" + std::string(64, 'c'), 8'000'000'000}};
  s.resolved_images = {r};
  s.resolved_summary = "worker-gpu@sha256:aaaaaaaaaaaa 8.4 GiB";
  const RolloutStatus back = RoundTrip(s);
  EXPECT_TRUE(back == s);
  ASSERT_EQ(back.resolved_images.size(), 1u);
  EXPECT_EQ(back.resolved_images[0], r);
  EXPECT_EQ(back.resolved_summary, s.resolved_summary);
  EXPECT_TRUE(RoundTrip(RolloutStatus{}).resolved_images.empty());
}

// ---- smoke checks (issue 20) ----

TEST(CodecRollout, DecodesSmokeChecksOfEnvironmentsAndTargetsWithTheirDefaults) {
  auto r = DecodeRollout(RolloutJson(R"({"images":{"backend":"r.io/backend:2"},
    "environments":[{"name":"dev",
      "targets":[{"deployment":"api","containers":{"api":"backend"},
                  "smokeChecks":[{"name":"db-migrations","image":"backend",
                                  "command":["./migrate","--dry-run"],"timeoutSeconds":60,
                                  "when":"AfterHealthy"}]},
                 {"deployment":"web","containers":{"web":"backend"}}],
      "smokeChecks":[{"name":"imports","image":"backend","command":["python","-c","import app"]},
                     {"name":"ping","image":"backend","command":["true"],
                      "when":"BeforePatch"}]}]})"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const EnvironmentSpec& dev = r->spec.environments.at(0);
  ASSERT_EQ(dev.smoke_checks.size(), 2u);
  const SmokeCheckSpec& imports = dev.smoke_checks[0];
  EXPECT_EQ(imports.name, "imports");
  EXPECT_EQ(imports.image, "backend");
  EXPECT_EQ(imports.command, (std::vector<std::string>{"python", "-c", "import app"}));
  EXPECT_EQ(imports.timeout_seconds, 300) << "the CRD's default, when the server did not apply it";
  EXPECT_EQ(imports.when, SmokeCheckWhen::kBeforePatch) << "the default";
  EXPECT_EQ(dev.smoke_checks[1].when, SmokeCheckWhen::kBeforePatch);
  ASSERT_EQ(dev.targets.size(), 2u);
  ASSERT_EQ(dev.targets[0].smoke_checks.size(), 1u);
  const SmokeCheckSpec& migrations = dev.targets[0].smoke_checks[0];
  EXPECT_EQ(migrations.name, "db-migrations");
  EXPECT_EQ(migrations.command, (std::vector<std::string>{"./migrate", "--dry-run"}));
  EXPECT_EQ(migrations.timeout_seconds, 60);
  EXPECT_EQ(migrations.when, SmokeCheckWhen::kAfterHealthy);
  EXPECT_TRUE(dev.targets[1].smoke_checks.empty());

  auto none = DecodeRollout(RolloutJson(kSpec));
  ASSERT_TRUE(none.ok());
  for (const EnvironmentSpec& e : none->spec.environments) {
    EXPECT_TRUE(e.smoke_checks.empty());
    for (const TargetSpec& t : e.targets) EXPECT_TRUE(t.smoke_checks.empty());
  }
}

TEST(CodecRollout, ASmokeCheckOfAWrongShapeOrAnUnknownWhenNamesTheField) {
  struct Case {
    std::string label;
    std::string environment;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"not a list", R"("smokeChecks":{"name":"x"})", "spec.environments[0].smokeChecks"},
      {"not an object", R"("smokeChecks":["x"])", "spec.environments[0].smokeChecks[0]"},
      {"unknown when", R"("smokeChecks":[{"name":"x","image":"a","command":["t"],"when":"Later"}])",
       "spec.environments[0].smokeChecks[0].when"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    auto r = DecodeRollout(RolloutJson(R"({"images":{"a":"r.io/a:1"},"environments":[{"name":"dev",
      "targets":[{"deployment":"api","containers":{"api":"a"}}],)" +
                                       c.environment + "}]}"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
  auto target = DecodeRollout(RolloutJson(R"({"images":{"a":"r.io/a:1"},"environments":[
    {"name":"dev","targets":[{"deployment":"api","containers":{"api":"a"}},
     {"deployment":"web","containers":{"web":"a"},
      "smokeChecks":[{"name":"x","image":"a","command":["t"],"when":"afterhealthy"}]}]}]})"));
  ASSERT_FALSE(target.ok());
  EXPECT_NE(target.status().message().find("spec.environments[0].targets[1].smokeChecks[0].when"),
            std::string::npos)
      << target.status().message();
}

TEST(CodecSmokeCheck, PhasesAndWhenHaveTheirApiNames) {
  std::vector<std::string> names;
  for (SmokeCheckPhase p : AllSmokeCheckPhases()) {
    names.push_back(PhaseName(p));
    EXPECT_EQ(ParseSmokeCheckPhase(PhaseName(p)), p);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Running", "Passed", "Failed", "TimedOut"}));
  EXPECT_FALSE(ParseSmokeCheckPhase("").has_value());
  EXPECT_FALSE(ParseSmokeCheckPhase("passed").has_value());
  EXPECT_EQ(SmokeCheckWhenName(SmokeCheckWhen::kBeforePatch), "BeforePatch");
  EXPECT_EQ(SmokeCheckWhenName(SmokeCheckWhen::kAfterHealthy), "AfterHealthy");
  EXPECT_EQ(ParseSmokeCheckWhen("BeforePatch"), SmokeCheckWhen::kBeforePatch);
  EXPECT_EQ(ParseSmokeCheckWhen("AfterHealthy"), SmokeCheckWhen::kAfterHealthy);
  EXPECT_FALSE(ParseSmokeCheckWhen("Always").has_value());
}

TEST(CodecStatus, SmokeChecksRoundTripWithAndWithoutAnExitCode) {
  RolloutStatus s = FullStatus();
  SmokeCheckStatus running;
  running.name = "imports";
  running.target = "api";
  running.job = "r-imports-0123456789";
  running.phase = SmokeCheckPhase::kRunning;
  running.started_at = kT0 + seconds(10);
  SmokeCheckStatus failed;
  failed.name = "db-migrations";
  failed.target = "worker";
  failed.job = "r-db-migrations-abcdef0123";
  failed.phase = SmokeCheckPhase::kFailed;
  failed.started_at = kT0 + seconds(20);
  failed.finished_at = kT0 + seconds(80);
  failed.exit_code = 3;
  failed.message = "smoke check db-migrations failed with exit code 3: BackoffLimitExceeded";
  SmokeCheckStatus zero = failed;
  zero.name = "ping";
  zero.phase = SmokeCheckPhase::kPassed;
  zero.exit_code = 0;
  zero.message.clear();
  SmokeCheckStatus timed_out = running;
  timed_out.name = "slow";
  timed_out.phase = SmokeCheckPhase::kTimedOut;
  timed_out.finished_at = kT0 + seconds(310);
  s.environments[1].smoke_checks = {running, failed, zero, timed_out};

  const Json encoded = EncodeStatus(s);
  const Json& checks = encoded.at("environments").at(1).at("smokeChecks");
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_FALSE(checks.at(0).has_field("exitCode")) << "absent, not 0";
  EXPECT_FALSE(checks.at(0).has_field("finishedAt"));
  EXPECT_FALSE(checks.at(0).has_field("message"));
  EXPECT_EQ(checks.at(0).at("phase").as_string(), "Running");
  EXPECT_EQ(checks.at(1).at("exitCode").as_integer(), 3);
  EXPECT_EQ(checks.at(2).at("exitCode").as_integer(), 0) << "a zero exit code is recorded";
  EXPECT_EQ(checks.at(3).at("phase").as_string(), "TimedOut");

  const RolloutStatus back = RoundTrip(s);
  EXPECT_TRUE(back == s);
  ASSERT_EQ(back.environments.size(), 2u);
  EXPECT_TRUE(back.environments[0].smoke_checks.empty());
  const auto& got = back.environments[1].smoke_checks;
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].name, "imports");
  EXPECT_EQ(got[0].target, "api");
  EXPECT_EQ(got[0].job, "r-imports-0123456789");
  EXPECT_EQ(got[0].phase, SmokeCheckPhase::kRunning);
  EXPECT_EQ(got[0].started_at, kT0 + seconds(10));
  EXPECT_FALSE(got[0].finished_at.has_value());
  EXPECT_FALSE(got[0].exit_code.has_value());
  EXPECT_EQ(got[1].phase, SmokeCheckPhase::kFailed);
  EXPECT_EQ(got[1].finished_at, kT0 + seconds(80));
  EXPECT_EQ(got[1].exit_code, 3);
  EXPECT_EQ(got[1].message, failed.message);
  EXPECT_EQ(got[2].phase, SmokeCheckPhase::kPassed);
  EXPECT_EQ(got[2].exit_code, 0);
  EXPECT_EQ(got[3].phase, SmokeCheckPhase::kTimedOut);

  // A change of any field is a change of status (the status write is skipped when equal).
  RolloutStatus changed = s;
  changed.environments[1].smoke_checks[0].exit_code = 0;
  EXPECT_FALSE(changed == s);
  changed = s;
  changed.environments[1].smoke_checks[1].phase = SmokeCheckPhase::kTimedOut;
  EXPECT_FALSE(changed == s);
}

TEST(CodecStatus, NoSmokeChecksEncodeAsBefore) {
  const RolloutStatus s = FullStatus();
  const std::string encoded = EncodeStatus(s).serialize();
  EXPECT_EQ(encoded.find("smokeChecks"), std::string::npos) << encoded;
  // The key is absent, so a status written before smoke checks existed is equal to its re-encoding.
  Json obj = RolloutJson(kSpec);
  obj["status"] = EncodeStatus(s);
  auto r = DecodeRollout(obj);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(EncodeStatus(r->status).serialize(), encoded);
  // An empty list from the server reads as none, too.
  obj["status"]["environments"][0]["smokeChecks"] = Json::array();
  auto empty = DecodeRollout(obj);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->status.environments[0].smoke_checks.empty());
  EXPECT_EQ(EncodeStatus(empty->status).serialize(), encoded);
}

TEST(CodecStatus, ASmokeCheckWithAnUnknownPhaseIsAnErrorNamingIt) {
  Json obj = RolloutJson(kSpec);
  obj["status"] = Parse(R"({"revision":1,"phase":"Progressing","environments":[{"name":"dev",
    "smokeChecks":[{"name":"imports","phase":"Exploded"}]}]})");
  auto r = DecodeRollout(obj);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("status.environments[dev].smokeChecks[0].phase"),
            std::string::npos)
      << r.status().message();
  // The error names the field and repeats a bounded part of the value only.
  obj["status"]["environments"][0]["smokeChecks"][0]["phase"] =
      Json::string(std::string(5000, 'x'));
  auto long_phase = DecodeRollout(obj);
  ASSERT_FALSE(long_phase.ok());
  EXPECT_LT(long_phase.status().message().size(), 256u);
  obj["status"]["environments"][0]["smokeChecks"][0]["phase"] = Json::string("Passed");
  auto ok = DecodeRollout(obj);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status.environments[0].smoke_checks.at(0).phase, SmokeCheckPhase::kPassed);
}

TEST(CodecBounds, ASmokeChecksMessageIsBounded) {
  RolloutStatus s;
  EnvironmentStatus e;
  e.name = "dev";
  SmokeCheckStatus c;
  c.name = "imports";
  c.phase = SmokeCheckPhase::kFailed;
  c.message = std::string(std::size_t{100} * 1024, 'l');
  e.smoke_checks.push_back(c);
  s.environments.push_back(e);
  const Json j = EncodeStatus(s);
  EXPECT_EQ(j.at("environments").at(0).at("smokeChecks").at(0).at("message").as_string().size(),
            kMaxMessage);
}

TEST(CodecSpecHash, ASmokeCheckChangeIsANewRevision) {
  const std::string spec = R"({"images":{"a":"r.io/a:1"},"environments":[{"name":"dev",
    "targets":[{"deployment":"api","containers":{"api":"a"},
                "smokeChecks":[{"name":"t","image":"a","command":["true"]}]}],
    "smokeChecks":[{"name":"e","image":"a","command":["true"],"timeoutSeconds":300}]}]})";
  const Json base = RolloutJson(spec);
  const std::string h = SpecHash(base);
  Json command = base;
  command["spec"]["environments"][0]["smokeChecks"][0]["command"][0] = Json::string("false");
  EXPECT_NE(SpecHash(command), h);
  Json timeout = base;
  timeout["spec"]["environments"][0]["smokeChecks"][0]["timeoutSeconds"] = Json::number(60);
  EXPECT_NE(SpecHash(timeout), h);
  Json when = base;
  when["spec"]["environments"][0]["targets"][0]["smokeChecks"][0]["when"] =
      Json::string("AfterHealthy");
  EXPECT_NE(SpecHash(when), h);
  // The cache keeps them: a trimmed rollout hashes and decodes the same.
  const Json trimmed = TrimRollout(Json(base));
  EXPECT_EQ(SpecHash(trimmed), h);
  auto r = DecodeRollout(trimmed);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->spec.environments[0].smoke_checks.size(), 1u);
  EXPECT_EQ(r->spec.environments[0].targets[0].smoke_checks.size(), 1u);
}

// ---- status.history ----
TEST(CodecStatus, HistoryRoundTripsEveryField) {
  RolloutStatus s = FullStatus();
  RevisionRecord done;
  done.revision = 1;
  done.images = {{"backend", "registry.example.com/app/backend:1.9.0"}};
  done.started_at = kT0;
  done.finished_at = kT0 + seconds(300);
  done.phase = RolloutPhase::kSucceeded;
  done.reason = "Succeeded";
  done.message = "revision 1 rolled out to every environment";
  RevisionRecord running;
  running.revision = 2;
  running.images = {{"backend", "registry.example.com/app/backend:2.0.0"},
                    {"worker-gpu", "registry.example.com/app/worker-gpu:2.0.0"}};
  running.started_at = kT0 + seconds(400);
  running.phase = RolloutPhase::kRollingBack;
  s.history = {done, running};

  const Json encoded = EncodeStatus(s);
  const Json& h = encoded.at("history");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.at(0).at("revision").as_integer(), 1);
  EXPECT_EQ(h.at(0).at("images").at("backend").as_string(),
            "registry.example.com/app/backend:1.9.0");
  EXPECT_EQ(h.at(0).at("startedAt").as_string(), FormatTime(kT0));
  EXPECT_EQ(h.at(0).at("finishedAt").as_string(), FormatTime(kT0 + seconds(300)));
  EXPECT_EQ(h.at(0).at("phase").as_string(), "Succeeded");
  EXPECT_EQ(h.at(0).at("reason").as_string(), "Succeeded");
  EXPECT_FALSE(h.at(1).has_field("finishedAt"));
  EXPECT_FALSE(h.at(1).has_field("reason"));
  EXPECT_FALSE(h.at(1).has_field("message"));
  EXPECT_EQ(h.at(1).at("phase").as_string(), "RollingBack");
  EXPECT_EQ(EncodeHistory(s.history).serialize(), h.serialize());

  const RolloutStatus back = RoundTrip(s);
  EXPECT_TRUE(back == s);
  ASSERT_EQ(back.history.size(), 2u);
  EXPECT_EQ(back.history[0].revision, 1);
  EXPECT_EQ(back.history[0].images, done.images);
  EXPECT_EQ(back.history[0].started_at, kT0);
  EXPECT_EQ(back.history[0].finished_at, kT0 + seconds(300));
  EXPECT_EQ(back.history[0].phase, RolloutPhase::kSucceeded);
  EXPECT_EQ(back.history[0].reason, "Succeeded");
  EXPECT_EQ(back.history[0].message, done.message);
  EXPECT_EQ(back.history[1].images, running.images);
  EXPECT_FALSE(back.history[1].finished_at.has_value());
  EXPECT_EQ(back.history[1].phase, RolloutPhase::kRollingBack);

  // A change of a record is a change of status (the status write is skipped when equal).
  RolloutStatus changed = s;
  changed.history[1].phase = RolloutPhase::kRolledBack;
  EXPECT_FALSE(changed == s);
  changed = s;
  changed.history[0].images["backend"] = "other";
  EXPECT_FALSE(changed == s);
}

TEST(CodecStatus, NoHistoryEncodesAsBefore) {
  const RolloutStatus s = FullStatus();
  const std::string encoded = EncodeStatus(s).serialize();
  EXPECT_EQ(encoded.find("history"), std::string::npos) << encoded;
  Json obj = RolloutJson(kSpec);
  obj["status"] = EncodeStatus(s);
  obj["status"]["history"] = Json::array();  // an empty list from the server reads as none
  auto r = DecodeRollout(obj);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->status.history.empty());
  EXPECT_EQ(EncodeStatus(r->status).serialize(), encoded);
}

TEST(CodecStatus, AHistoryRecordWithAnUnknownPhaseIsAnErrorNamingIt) {
  Json obj = RolloutJson(kSpec);
  obj["status"] = Parse(R"({"revision":2,"phase":"Progressing","history":[
    {"revision":1,"phase":"Succeeded"},{"revision":2,"phase":"Exploded"}]})");
  auto r = DecodeRollout(obj);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("status.history[1].phase"), std::string::npos)
      << r.status().message();
  obj["status"]["history"][1]["phase"] = Json::string("Progressing");
  auto ok = DecodeRollout(obj);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->status.history.size(), 2u);
  EXPECT_EQ(ok->status.history[1].phase, RolloutPhase::kProgressing);
}

TEST(CodecBounds, AHistoryRecordsReasonAndMessageAreBounded) {
  RolloutStatus s;
  RevisionRecord h;
  h.revision = 1;
  h.phase = RolloutPhase::kFailed;
  h.reason = std::string(5000, 'R');
  h.message = std::string(std::size_t{100} * 1024, 'm');
  s.history.push_back(h);
  const Json j = EncodeStatus(s);
  EXPECT_EQ(j.at("history").at(0).at("reason").as_string().size(), kMaxReason);
  EXPECT_EQ(j.at("history").at(0).at("message").as_string().size(), kMaxMessage);
}

}  // namespace
}  // namespace rollgate::api
