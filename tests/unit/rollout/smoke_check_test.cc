// Smoke checks' pure parts: where a check runs (SmokeChecksOf, SiteOf), its Job's name, the Job
// built from a Deployment as the API server returns it (every field copied or dropped on
// purpose), what a Job and its pods say (ObserveSmokeJob, shaped as the Job controller and a
// kubelet write them), and the bounded log excerpt.
#include "controller/rollout/smoke_check.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller/api/well_known.h"

namespace rollgate::rollout {
namespace {

using kube::Json;

// A Deployment as the API server returns it: server defaults filled in, an injected validator
// init container, a sidecar, and every pod-level field a user may set.
constexpr char kDeployment[] = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "api", "namespace": "shop", "uid": "d-1", "resourceVersion": "812",
               "labels": {"app": "api"},
               "annotations": {"rollgate.io/owner": "rollouts/shop", "rollgate.io/revision": "3"}},
  "spec": {
    "replicas": 3,
    "selector": {"matchLabels": {"app": "api"}},
    "template": {
      "metadata": {"labels": {"app": "api", "tier": "web"},
                   "annotations": {"prometheus.io/scrape": "true"}},
      "spec": {
        "serviceAccountName": "api-sa",
        "serviceAccount": "api-sa",
        "automountServiceAccountToken": false,
        "nodeSelector": {"pool": "general"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "api",
                         "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/arch",
                "operator": "In", "values": ["amd64"]}]}]}}},
        "imagePullSecrets": [{"name": "regcred"}],
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 2000},
        "priorityClassName": "high",
        "runtimeClassName": "gvisor",
        "schedulerName": "default-scheduler",
        "dnsPolicy": "ClusterFirst",
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
        "hostAliases": [{"ip": "10.0.0.9", "hostnames": ["db.internal"]}],
        "enableServiceLinks": false,
        "volumes": [{"name": "config", "configMap": {"name": "api-config"}},
                    {"name": "scratch", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 45,
        "restartPolicy": "Always",
        "hostNetwork": true, "hostPID": true, "hostIPC": true,
        "nodeName": "node-7",
        "initContainers": [{"name": "rollgate-validate",
                            "image": "registry.example.com/rollgate-validate:0.1.0"}],
        "containers": [
          {"name": "api", "image": "registry.example.com/shop/api:1.0",
           "command": ["/bin/api"], "args": ["--serve", "--port=8080"],
           "env": [{"name": "MODE", "value": "prod"},
                   {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
           "envFrom": [{"secretRef": {"name": "api-secrets"}}],
           "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                         "limits": {"memory": "512Mi"}},
           "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false},
           "volumeMounts": [{"name": "config", "mountPath": "/etc/api"}],
           "workingDir": "/srv",
           "imagePullPolicy": "IfNotPresent",
           "ports": [{"containerPort": 8080, "protocol": "TCP"}],
           "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
           "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
           "startupProbe": {"httpGet": {"path": "/started", "port": 8080}},
           "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
           "terminationMessagePath": "/dev/termination-log",
           "terminationMessagePolicy": "File"},
          {"name": "proxy", "image": "registry.example.com/proxy:2.1",
           "ports": [{"containerPort": 15001}]}
        ]
      }
    }
  }
})";

constexpr char kNewImage[] =
    "registry.example.com/shop/api@sha256:"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

SmokeJob Job() {
  SmokeJob j;
  j.check = "migrations";
  j.namespace_ = "shop";
  j.job = "shop-migrations-0123456789";
  j.deployment = "api";
  j.container = "api";
  j.image = kNewImage;
  j.command = {"/bin/api", "check-migrations", "--strict"};
  j.timeout_seconds = 120;
  j.rollout = "rollouts/shop";
  j.rollout_uid = "8d1c3f0e-uid";
  j.revision = 4;
  j.environment = "prod";
  return j;
}

Json Built(const SmokeJob& j = Job(), const SmokeJobOptions& opts = {}) {
  auto r = BuildSmokeJob(Json::parse(kDeployment), j, opts);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : Json::object();
}

std::set<std::string> Keys(const Json& obj) {
  std::set<std::string> out;
  for (const auto& kv : obj.as_object()) out.insert(kv.first);
  return out;
}

TEST(SmokeCheckJob, CopiesEveryPodLevelFieldAndDropsTheRest) {
  const Json job = Built();
  const Json pod = Json::parse(kDeployment).at("spec").at("template").at("spec");
  const Json& spec = job.at("spec").at("template").at("spec");
  for (const char* f :
       {"serviceAccountName", "automountServiceAccountToken", "nodeSelector", "tolerations",
        "affinity", "imagePullSecrets", "securityContext", "priorityClassName", "runtimeClassName",
        "schedulerName", "dnsPolicy", "dnsConfig", "hostAliases", "enableServiceLinks", "volumes",
        "terminationGracePeriodSeconds"}) {
    ASSERT_TRUE(spec.has_field(f)) << f;
    EXPECT_EQ(spec.at(f), pod.at(f)) << f;
  }
  for (const char* f :
       {"initContainers", "hostNetwork", "hostPID", "hostIPC", "nodeName", "serviceAccount"}) {
    EXPECT_FALSE(spec.has_field(f)) << f;
  }
  EXPECT_EQ(spec.at("restartPolicy").as_string(), "Never");
  // Nothing but the copied fields, the restart policy and the one container.
  EXPECT_EQ(Keys(spec).size(), 16U + 2U);
  ASSERT_EQ(spec.at("containers").size(), 1U);  // the sidecar is dropped
}

TEST(SmokeCheckJob, CopiesTheContainersRunTimeAndReplacesImageAndCommand) {
  const Json job = Built();
  const Json src =
      Json::parse(kDeployment).at("spec").at("template").at("spec").at("containers").at(0);
  const Json& c = job.at("spec").at("template").at("spec").at("containers").at(0);
  EXPECT_EQ(c.at("name").as_string(), "api");
  EXPECT_EQ(c.at("image").as_string(), kNewImage);
  ASSERT_EQ(c.at("command").size(), 3U);
  EXPECT_EQ(c.at("command").at(0).as_string(), "/bin/api");
  EXPECT_EQ(c.at("command").at(1).as_string(), "check-migrations");
  EXPECT_EQ(c.at("command").at(2).as_string(), "--strict");
  for (const char* f : {"env", "envFrom", "resources", "securityContext", "volumeMounts",
                        "workingDir", "imagePullPolicy"}) {
    ASSERT_TRUE(c.has_field(f)) << f;
    EXPECT_EQ(c.at(f), src.at(f)) << f;
  }
  for (const char* f : {"args", "ports", "livenessProbe", "readinessProbe", "startupProbe",
                        "lifecycle", "terminationMessagePath"}) {
    EXPECT_FALSE(c.has_field(f)) << f;
  }
  EXPECT_EQ(c.at("terminationMessagePolicy").as_string(), "FallbackToLogsOnError");
  EXPECT_EQ(Keys(c).size(), 3U + 7U + 1U);
}

TEST(SmokeCheckJob, JobSpecMetadataAndLabels) {
  SmokeJobOptions opts;
  opts.keep_finished = std::chrono::seconds(900);
  const Json job = Built(Job(), opts);
  EXPECT_EQ(job.at("apiVersion").as_string(), "batch/v1");
  EXPECT_EQ(job.at("kind").as_string(), "Job");
  const Json& meta = job.at("metadata");
  EXPECT_EQ(meta.at("name").as_string(), "shop-migrations-0123456789");
  EXPECT_EQ(meta.at("namespace").as_string(), "shop");
  const Json& labels = meta.at("labels");
  EXPECT_EQ(Keys(labels).size(), 4U);
  EXPECT_EQ(labels.at(kSmokeCheckLabel).as_string(), "migrations");
  EXPECT_EQ(labels.at(kSmokeRolloutLabel).as_string(), "shop");
  EXPECT_EQ(labels.at(kSmokeRevisionLabel).as_string(), "4");
  EXPECT_EQ(labels.at(kSmokeEnvironmentLabel).as_string(), "prod");
  const Json& ann = meta.at("annotations");
  EXPECT_EQ(Keys(ann).size(), 2U);
  EXPECT_EQ(ann.at(api::kOwnerAnnotation).as_string(), "rollouts/shop");
  EXPECT_EQ(ann.at(kSmokeRolloutUidAnnotation).as_string(), "8d1c3f0e-uid");

  const Json& spec = job.at("spec");
  EXPECT_EQ(spec.at("backoffLimit").as_integer(), 0);
  EXPECT_EQ(spec.at("activeDeadlineSeconds").as_integer(), 120);
  EXPECT_EQ(spec.at("ttlSecondsAfterFinished").as_integer(), 900);
  EXPECT_FALSE(spec.has_field("selector"));  // the Job controller generates it
  // The pod carries Rollgate's labels only: no Service selects it, no ReplicaSet counts it.
  const Json& tmeta = spec.at("template").at("metadata");
  EXPECT_EQ(tmeta.at("labels"), labels);
  EXPECT_FALSE(tmeta.at("labels").has_field("app"));
  EXPECT_FALSE(tmeta.has_field("annotations"));
}

TEST(SmokeCheckJob, DefaultKeepsAFinishedJobAnHour) {
  EXPECT_EQ(Built().at("spec").at("ttlSecondsAfterFinished").as_integer(), 3600);
}

TEST(SmokeCheckJob, ALongRolloutNameIsAValidLabelValue) {
  SmokeJob j = Job();
  const std::string name(80, 'r');
  j.rollout = "rollouts/" + name;
  const std::string v = Built(j).at("metadata").at("labels").at(kSmokeRolloutLabel).as_string();
  EXPECT_EQ(v.size(), 63U);
  EXPECT_EQ(v.substr(0, 53), std::string(52, 'r') + "-");
  j.rollout = "rollouts/" + name + "x";  // a different name, a different value
  EXPECT_NE(Built(j).at("metadata").at("labels").at(kSmokeRolloutLabel).as_string(), v);
}

TEST(SmokeCheckJob, ResourceClaimsOfTheTemplateAreNotCopied) {
  Json d = Json::parse(kDeployment);
  d["spec"]["template"]["spec"]["containers"][0]["resources"]["claims"] =
      Json::parse(R"([{"name":"gpu"}])");
  auto r = BuildSmokeJob(d, Job(), {});
  ASSERT_TRUE(r.ok());
  const Json& res = r->at("spec").at("template").at("spec").at("containers").at(0).at("resources");
  EXPECT_FALSE(res.has_field("claims"));
  EXPECT_EQ(res.at("requests").at("cpu").as_string(), "250m");
}

TEST(SmokeCheckJob, TheOtherContainerCanBeTheCheck) {
  SmokeJob j = Job();
  j.container = "proxy";
  j.image = "registry.example.com/proxy:2.2";
  const Json c = Built(j).at("spec").at("template").at("spec").at("containers");
  ASSERT_EQ(c.size(), 1U);
  EXPECT_EQ(c.at(0).at("name").as_string(), "proxy");
  EXPECT_EQ(c.at(0).at("image").as_string(), "registry.example.com/proxy:2.2");
  EXPECT_FALSE(c.at(0).has_field("ports"));
  EXPECT_FALSE(c.at(0).has_field("env"));
}

TEST(SmokeCheckJob, MissingContainerIsInvalid) {
  SmokeJob j = Job();
  j.container = "worker";
  auto r = BuildSmokeJob(Json::parse(kDeployment), j, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("shop/api"), std::string::npos);
  EXPECT_NE(r.status().message().find("\"worker\""), std::string::npos);
}

TEST(SmokeCheckJob, MissingPodTemplateIsInvalid) {
  for (const char* d : {R"({"metadata":{"name":"api"}})", R"({"spec":{"replicas":1}})",
                        R"({"spec":{"template":{"metadata":{}}}})", "null"}) {
    auto r = BuildSmokeJob(Json::parse(d), Job(), {});
    ASSERT_FALSE(r.ok()) << d;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << d;
    EXPECT_NE(r.status().message().find("shop/api"), std::string::npos) << d;
  }
}

// ---- naming ----

TEST(SmokeCheckName, DeterministicAndShaped) {
  const std::string n = SmokeJobName("shop", "uid-1", 4, "prod", 1, "migrations");
  EXPECT_EQ(n, SmokeJobName("shop", "uid-1", 4, "prod", 1, "migrations"));
  ASSERT_EQ(n.size(), std::string("shop-migrations-").size() + 10);
  EXPECT_EQ(n.substr(0, 16), "shop-migrations-");
  for (char c : n.substr(16)) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << n;
}

TEST(SmokeCheckName, DiffersInEveryPart) {
  const std::string n = SmokeJobName("shop", "uid-1", 4, "prod", 1, "migrations");
  EXPECT_NE(n, SmokeJobName("shop", "uid-2", 4, "prod", 1, "migrations"));
  EXPECT_NE(n, SmokeJobName("shop", "uid-1", 5, "prod", 1, "migrations"));
  EXPECT_NE(n, SmokeJobName("shop", "uid-1", 4, "staging", 1, "migrations"));
  EXPECT_NE(n, SmokeJobName("shop", "uid-1", 4, "prod", 2, "migrations"));
  EXPECT_NE(n, SmokeJobName("shop", "uid-1", 4, "prod", 1, "schema"));
  EXPECT_NE(n, SmokeJobName("shop2", "uid-1", 4, "prod", 1, "migrations"));
  // Parts that join to the same text still differ.
  EXPECT_NE(SmokeJobName("a", "u", 1, "b-c", 1, "d"), SmokeJobName("a", "u", 1, "b", 1, "c-d"));
}

TEST(SmokeCheckName, LongNamesFitIn63WithoutATrailingDash) {
  const std::string rollout(253 - 10, 'a');
  const std::string check(63, 'c');
  const std::string n = SmokeJobName(rollout, "uid", 1, "prod", 1, check);
  EXPECT_EQ(n.size(), 63U);
  EXPECT_EQ(n.substr(0, 52), std::string(52, 'a'));
  EXPECT_NE(n, SmokeJobName(rollout, "uid", 1, "prod", 1, std::string(63, 'd')));
  // The cut lands on the "-" between rollout and check, or on dots and dashes of the name.
  for (const std::string& r :
       {std::string(51, 'a'), std::string(50, 'a') + "-.", std::string(48, 'a') + ".-.-"}) {
    const std::string m = SmokeJobName(r, "uid", 1, "prod", 1, "check");
    EXPECT_LE(m.size(), 63U) << m;
    const std::string prefix = m.substr(0, m.size() - 11);
    EXPECT_NE(prefix.back(), '-') << m;
    EXPECT_NE(prefix.back(), '.') << m;
    EXPECT_EQ(m[m.size() - 11], '-') << m;
  }
}

// ---- where a check runs ----

api::EnvironmentSpec Env() {
  api::EnvironmentSpec env;
  env.name = "prod";
  api::TargetSpec web;
  web.deployment = "web";
  web.containers = {{"nginx", "frontend"}, {"proxy", "mesh"}};
  api::TargetSpec api_target;
  api_target.deployment = "api";
  // Two containers of image "backend": the first by name runs the check.
  api_target.containers = {{"worker", "backend"}, {"api", "backend"}, {"proxy", "mesh"}};
  api_target.smoke_checks.push_back({"api-own", "backend", {"/check"}, 60, {}});
  api_target.smoke_checks.push_back({"api-mesh", "mesh", {"/check"}, 60, {}});
  api_target.smoke_checks.push_back({"api-none", "frontend", {"/check"}, 60, {}});
  env.targets = {web, api_target};
  env.smoke_checks.push_back({"env-backend", "backend", {"/check"}, 60, {}});
  env.smoke_checks.push_back({"env-mesh", "mesh", {"/check"}, 60, {}});
  env.smoke_checks.push_back({"env-none", "batch", {"/check"}, 60, {}});
  return env;
}

TEST(SmokeCheckSite, ChecksOfEnvironmentThenTargetsInSpecOrder) {
  const api::EnvironmentSpec env = Env();
  const auto checks = SmokeChecksOf(env);
  ASSERT_EQ(checks.size(), 6U);
  const std::vector<std::string> names = {"env-backend", "env-mesh", "env-none",
                                          "api-own",     "api-mesh", "api-none"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(checks[i].spec->name, names[i]);
    if (i < 3) {
      EXPECT_EQ(checks[i].spec, &env.smoke_checks[i]);
      EXPECT_FALSE(checks[i].own_target);
    } else {
      EXPECT_EQ(checks[i].spec, &env.targets[1].smoke_checks[i - 3]);
      EXPECT_EQ(checks[i].own_target, std::optional<std::size_t>(1));
    }
  }
  EXPECT_TRUE(SmokeChecksOf(api::EnvironmentSpec{}).empty());
}

TEST(SmokeCheckSite, EnvironmentCheckRunsWithTheFirstTargetOfItsImage) {
  const api::EnvironmentSpec env = Env();
  const auto checks = SmokeChecksOf(env);
  auto backend = SiteOf(env, checks[0]);
  ASSERT_TRUE(backend);
  EXPECT_EQ(backend->target, 1U);
  EXPECT_EQ(backend->container, "api");  // "api" < "worker"
  auto mesh = SiteOf(env, checks[1]);
  ASSERT_TRUE(mesh);
  EXPECT_EQ(mesh->target, 0U);  // web comes first in spec order
  EXPECT_EQ(mesh->container, "proxy");
  EXPECT_FALSE(SiteOf(env, checks[2]));  // no container of image "batch"
}

TEST(SmokeCheckSite, TargetCheckRunsWithItsOwnTarget) {
  const api::EnvironmentSpec env = Env();
  const auto checks = SmokeChecksOf(env);
  auto own = SiteOf(env, checks[3]);
  ASSERT_TRUE(own);
  EXPECT_EQ(own->target, 1U);
  EXPECT_EQ(own->container, "api");
  auto mesh = SiteOf(env, checks[4]);  // web has one too, but the check is api's
  ASSERT_TRUE(mesh);
  EXPECT_EQ(mesh->target, 1U);
  EXPECT_EQ(mesh->container, "proxy");
  // Its target has no container of image "frontend" (web does): no site.
  EXPECT_FALSE(SiteOf(env, checks[5]));
  DeclaredSmokeCheck beyond{checks[3].spec, std::size_t{7}};
  EXPECT_FALSE(SiteOf(env, beyond));
  EXPECT_FALSE(SiteOf(env, DeclaredSmokeCheck{}));
}

// ---- observing a Job ----

Json JobObject(const std::string& annotations, const std::string& conditions) {
  return Json::parse(R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":")" + Job().job +
                     R"(","namespace":"shop","uid":"job-uid-1","annotations":)" + annotations +
                     R"(},"spec":{"backoffLimit":0},"status":{"conditions":)" + conditions + "}}");
}
constexpr char kOurs[] = R"({"rollgate.io/owner":"rollouts/shop",)"
                         R"("rollgate.io/rollout-uid":"8d1c3f0e-uid"})";

std::string Cond(const std::string& type, const std::string& reason, const std::string& msg) {
  return R"({"type":")" + type + R"(","status":"True","reason":")" + reason + R"(","message":")" +
         msg + R"(","lastTransitionTime":"2026-12-02T08:03:00Z"})";
}

// A pod of the Job; `state` is the check container's state object.
Json PodOf(const std::string& created, const std::string& state, const std::string& last = "{}") {
  return Json::parse(R"({"metadata":{"name":"shop-migrations-0123456789-x7k2p",)"
                     R"("creationTimestamp":")" +
                     created +
                     R"("},"status":{"phase":"Failed","containerStatuses":[)"
                     R"({"name":"api","ready":false,"restartCount":0,"state":)" +
                     state + R"(,"lastState":)" + last + "}]}}");
}

std::string Terminated(int code, const std::string& message, const std::string& reason = "Error") {
  return R"({"terminated":{"exitCode":)" + std::to_string(code) + R"(,"reason":")" + reason +
         R"(","message":")" + message +
         R"(","startedAt":"2026-12-02T08:01:00Z","finishedAt":"2026-12-02T08:02:00Z"}})";
}

TEST(SmokeCheckObserve, NullJobIsAbsent) {
  auto o = ObserveSmokeJob(Json::null(), {}, Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kAbsent);
}

TEST(SmokeCheckObserve, Running) {
  for (const std::string& conds : std::vector<std::string>{
           "[]", "null",
           "[" + Cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the limit") + "]",
           R"([{"type":"Complete","status":"False"}])",
           R"([{"type":"Failed","status":"False"}])"}) {
    auto o = ObserveSmokeJob(JobObject(kOurs, conds), {}, Job());
    EXPECT_EQ(o.state, SmokeJobObservation::State::kRunning) << conds;
    EXPECT_EQ(o.uid, "job-uid-1");
    EXPECT_FALSE(o.exit_code);
  }
}

TEST(SmokeCheckObserve, Complete) {
  const std::string conds = "[" + Cond("SuccessCriteriaMet", "CompletionsReached", "Reached") +
                            "," + Cond("Complete", "CompletionsReached", "Reached") + "]";
  auto o = ObserveSmokeJob(JobObject(kOurs, conds), {}, Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kSucceeded);
  EXPECT_EQ(o.uid, "job-uid-1");
}

TEST(SmokeCheckObserve, FailedWithExitCodeAndLogFromTheNewestTerminatedPod) {
  const std::string conds =
      "[" +
      Cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit") +
      "," + Cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit") +
      "]";
  const std::vector<Json> pods = {
      PodOf("2026-12-02T08:00:00Z", Terminated(1, "old pod")),
      PodOf("2026-12-02T08:01:00Z", Terminated(3, "migration 42 pending\\nrefusing to start\\n")),
      // Newer, but its container never ran.
      PodOf("2026-12-02T08:02:00Z", R"({"waiting":{"reason":"ContainerCreating"}})"),
  };
  auto o = ObserveSmokeJob(JobObject(kOurs, conds), pods, Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kFailed);
  EXPECT_EQ(o.exit_code, std::optional<int>(3));
  EXPECT_EQ(o.message,
            "BackoffLimitExceeded: Job has reached the specified backoff limit; last log lines:\n"
            "migration 42 pending\nrefusing to start");
  // The list's order does not matter: the newest by creationTimestamp.
  const std::vector<Json> reversed(pods.rbegin(), pods.rend());
  EXPECT_EQ(ObserveSmokeJob(JobObject(kOurs, conds), reversed, Job()).exit_code,
            std::optional<int>(3));
}

TEST(SmokeCheckObserve, FailedTerminationFromLastState) {
  const std::string conds = "[" + Cond("Failed", "PodFailurePolicy", "Container api failed") + "]";
  auto o =
      ObserveSmokeJob(JobObject(kOurs, conds),
                      {PodOf("2026-12-02T08:00:00Z", R"({"waiting":{"reason":"CrashLoopBackOff"}})",
                             Terminated(137, "killed", "OOMKilled"))},
                      Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kFailed);
  EXPECT_EQ(o.exit_code, std::optional<int>(137));
  EXPECT_EQ(o.message,
            "PodFailurePolicy: Container api failed; container api: OOMKilled; last log "
            "lines:\nkilled");
}

TEST(SmokeCheckObserve, DeadlineExceededIsTimedOut) {
  const std::string conds =
      "[" + Cond("Failed", "DeadlineExceeded", "Job was active longer than specified deadline") +
      "]";
  auto o = ObserveSmokeJob(JobObject(kOurs, conds),
                           {PodOf("2026-12-02T08:00:00Z", Terminated(143, "still waiting for db"))},
                           Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kTimedOut);
  EXPECT_EQ(o.exit_code, std::optional<int>(143));
  EXPECT_EQ(o.message,
            "DeadlineExceeded: Job was active longer than specified deadline; last log lines:\n"
            "still waiting for db");
}

TEST(SmokeCheckObserve, TimedOutWhileThePullWaited) {
  const std::string conds =
      "[" + Cond("Failed", "DeadlineExceeded", "Job was active longer than specified deadline") +
      "]";
  auto o = ObserveSmokeJob(
      JobObject(kOurs, conds),
      {PodOf("2026-12-02T08:00:00Z",
             R"({"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}})")},
      Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kTimedOut);
  EXPECT_FALSE(o.exit_code);
  EXPECT_EQ(o.message,
            "DeadlineExceeded: Job was active longer than specified deadline; container api was "
            "waiting: ImagePullBackOff: Back-off pulling image");
}

TEST(SmokeCheckObserve, FailedWithoutPods) {
  const std::string conds = "[" + Cond("Failed", "BackoffLimitExceeded", "limit") + "]";
  auto o = ObserveSmokeJob(JobObject(kOurs, conds), {}, Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kFailed);
  EXPECT_FALSE(o.exit_code);
  EXPECT_EQ(o.message, "BackoffLimitExceeded: limit");
  // A pod of other containers only says nothing either.
  SmokeJob other = Job();
  other.container = "worker";
  o = ObserveSmokeJob(JobObject(kOurs, conds), {PodOf("2026-12-02T08:00:00Z", Terminated(1, "x"))},
                      other);
  EXPECT_FALSE(o.exit_code);
  EXPECT_EQ(o.message, "BackoffLimitExceeded: limit");
  // No reason and no message.
  o = ObserveSmokeJob(JobObject(kOurs, R"([{"type":"Failed","status":"True"}])"), {}, Job());
  EXPECT_EQ(o.state, SmokeJobObservation::State::kFailed);
  EXPECT_EQ(o.message, "the Job failed");
}

TEST(SmokeCheckObserve, FailureMessageIsBoundedAndSanitised) {
  const std::string conds =
      "[" + Cond("Failed", "BackoffLimitExceeded", std::string(5000, 'm')) + "]";
  std::string log;
  for (int i = 0; i < 400; ++i) log += "line " + std::to_string(i) + R"( \u001b[31mred\u001b[0m\n)";
  auto o = ObserveSmokeJob(JobObject(kOurs, conds),
                           {PodOf("2026-12-02T08:00:00Z", Terminated(2, log))}, Job());
  EXPECT_LE(o.message.size(), 2048U);
  EXPECT_EQ(o.message.find('\x1b'), std::string::npos);
  EXPECT_NE(o.message.find("line 399 \xEF\xBF\xBD[31mred"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("; last log lines:\n..."), std::string::npos);
}

TEST(SmokeCheckObserve, ForeignJobs) {
  const std::string conds = "[" + Cond("Complete", "CompletionsReached", "Reached") + "]";
  auto other_owner = ObserveSmokeJob(
      JobObject(R"({"rollgate.io/owner":"team/other","rollgate.io/rollout-uid":"8d1c3f0e-uid"})",
                conds),
      {}, Job());
  EXPECT_EQ(other_owner.state, SmokeJobObservation::State::kForeign);
  EXPECT_NE(other_owner.message.find("team/other"), std::string::npos);
  EXPECT_EQ(other_owner.uid, "job-uid-1");

  auto other_uid = ObserveSmokeJob(
      JobObject(R"({"rollgate.io/owner":"rollouts/shop","rollgate.io/rollout-uid":"old-uid"})",
                conds),
      {}, Job());
  EXPECT_EQ(other_uid.state, SmokeJobObservation::State::kForeign);
  EXPECT_NE(other_uid.message.find("old-uid"), std::string::npos);

  for (const char* none : {"{}", "null"}) {
    auto unowned = ObserveSmokeJob(JobObject(none, conds), {}, Job());
    EXPECT_EQ(unowned.state, SmokeJobObservation::State::kForeign);
    EXPECT_NE(unowned.message.find("not created by Rollgate"), std::string::npos);
  }
  // Owner right, uid annotation missing.
  auto no_uid =
      ObserveSmokeJob(JobObject(R"({"rollgate.io/owner":"rollouts/shop"})", conds), {}, Job());
  EXPECT_EQ(no_uid.state, SmokeJobObservation::State::kForeign);
}

// ---- log excerpts ----

TEST(SmokeCheckLog, ShortTextIsKept) {
  EXPECT_EQ(LogExcerpt("ok\n", 100), "ok");
  EXPECT_EQ(LogExcerpt("a\tb\nc\r\nd\r\n", 100), "a\tb\nc\nd");
  EXPECT_EQ(LogExcerpt("", 100), "");
}

TEST(SmokeCheckLog, CutAtALineBoundaryWithinTheBound) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "line " + std::to_string(i) + "\n";
  const std::string e = LogExcerpt(text, 64);
  EXPECT_LE(e.size(), 64U);
  EXPECT_EQ(e.substr(0, 8), "...line ");  // a whole line after the ellipsis
  EXPECT_EQ(e.substr(e.size() - 7), "line 99");
  const std::string big = LogExcerpt(text, kMaxSmokeLog);
  EXPECT_EQ(big, text.substr(0, text.size() - 1));  // 790 bytes fit
}

TEST(SmokeCheckLog, OneLongLineIsCutAtACharacter) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "\xC3\xA9";  // é
  text += "x";
  const std::string e = LogExcerpt(text, 100);
  EXPECT_LE(e.size(), 100U);
  EXPECT_GE(e.size(), 98U);
  EXPECT_EQ(e.substr(0, 3), "...");
  EXPECT_EQ(e.back(), 'x');
  EXPECT_EQ(e.substr(3, 2), "\xC3\xA9");  // starts on a whole character
}

TEST(SmokeCheckLog, InvalidUtf8AndControlCharactersReplaced) {
  const std::string e = LogExcerpt(std::string("a\xFF"
                                               "b\x01"
                                               "c\x1b[0m\x7F"
                                               "d\xC2\x85"
                                               "e\tf\xE2\x82"),
                                   100);
  EXPECT_EQ(e,
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c\xEF\xBF\xBD[0m\xEF\xBF\xBD"
            "d\xEF\xBF\xBD"
            "e\tf\xEF\xBF\xBD\xEF\xBF\xBD");
  // A NUL inside is replaced, not an end.
  EXPECT_EQ(LogExcerpt(std::string("x\0y", 3), 100), "x\xEF\xBF\xBDy");
}

TEST(SmokeCheckLog, HugeTextIsBoundedAndCutOnItsEnd) {
  std::string text(1 << 20, '\xFF');  // a megabyte of invalid bytes, each 3 bytes once replaced
  text += "\nthe end";
  const std::string e = LogExcerpt(text, kMaxSmokeLog);
  EXPECT_LE(e.size(), kMaxSmokeLog);
  EXPECT_EQ(e.substr(0, 3), "...");
  EXPECT_EQ(e.substr(e.size() - 8), "\nthe end");
  // Tiny bounds.
  EXPECT_EQ(LogExcerpt("abcdef", 2), "..");
  EXPECT_EQ(LogExcerpt("abcdef", 4), "...f");
  EXPECT_EQ(LogExcerpt("abcdef", 6), "abcdef");
}

}  // namespace
}  // namespace rollgate::rollout
