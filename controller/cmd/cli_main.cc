// rollgate: the command-line interface for ContainerRollouts.
//   rollgate [flags] list                    rollouts in the namespace (-A: all namespaces)
//   rollgate [flags] status NAME             phase, revision, environments, conditions
//   rollgate [flags] promote|abort|retry NAME
//   rollgate [flags] resolve IMAGE           the digest, platforms and per-platform compressed size
//                                            a registry gives for IMAGE (what the controller's
//                                            registry-aware pre-flight sees; issue 16)
// promote/abort/retry write a fresh value (a timestamp) to the rollgate.io/<verb> annotation;
// the controller acts once per value. Exit codes: 0 done, 1 API error, 2 usage or configuration.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "controller/api/codec.h"
#include "controller/common/clock.h"
#include "controller/common/flags.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"
#include "controller/rollout/image_ref.h"
#include "controller/rollout/oci_manifest.h"
#include "controller/rollout/registry_client.h"

namespace {

using namespace rollgate;  // NOLINT(google-build-using-namespace): a main

int Usage(const FlagSet& fs, const std::string& error) {
  if (!error.empty()) std::fprintf(stderr, "rollgate: %s\n", error.c_str());
  std::fprintf(stderr,
               "Usage: rollgate [flags] list | status NAME | promote NAME | abort NAME | retry "
               "NAME | resolve IMAGE | version\n\n%s",
               fs.Usage().c_str());
  return 2;
}

void PrintStatus(const api::Rollout& r) {
  const auto& s = r.status;
  const std::string phase = api::PhaseName(s.phase);
  std::printf("%s/%s  phase=%s  revision=%lld  environment=%s\n", r.namespace_.c_str(),
              r.name.c_str(), phase.empty() ? "(not reconciled yet)" : phase.c_str(),
              static_cast<long long>(s.revision), s.current_environment.c_str());
  if (!s.message.empty()) std::printf("  %s\n", s.message.c_str());
  for (const auto& e : s.environments) {
    std::printf("  %-12s %-16s", e.name.c_str(), api::PhaseName(e.phase).c_str());
    if (!e.reason.empty() && e.reason != "Succeeded") std::printf(" %s:", e.reason.c_str());
    if (!e.message.empty()) std::printf(" %s", e.message.c_str());
    std::printf("\n");
    for (const auto& t : e.targets) {
      for (const auto& [container, image] : t.previous_images) {
        std::printf("      %s/%s %s: was %s (%d/%d available)\n", t.namespace_.c_str(),
                    t.deployment.c_str(), container.c_str(), image.c_str(), t.available_replicas,
                    t.replicas);
      }
    }
    for (const auto& c : e.smoke_checks) {
      std::printf("      smoke check %s  %s", c.name.c_str(), api::PhaseName(c.phase).c_str());
      if (c.exit_code) std::printf("  exit %d", *c.exit_code);
      if (c.started_at) {
        const auto end = c.finished_at.value_or(std::chrono::system_clock::now());
        std::printf(
            "  %llds",
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::seconds>(end - *c.started_at).count()));
      }
      std::printf("  (job %s, deployment %s)\n", c.job.c_str(), c.target.c_str());
    }
  }
  for (const auto& image : s.resolved_images) {
    std::printf("  image %s  %s@%s  %s\n", image.name.c_str(), image.reference.c_str(),
                image.digest.c_str(), rollout::HumanBytes(image.size).c_str());
    for (const auto& p : image.platforms) {
      std::printf("      %-16s %s  %s\n", p.platform.c_str(), p.digest.c_str(),
                  rollout::HumanBytes(p.size).c_str());
    }
  }
  for (const auto& c : s.conditions) {
    std::printf("  condition %s=%s (%s)\n", c.type.c_str(), c.status.c_str(), c.reason.c_str());
  }
}

// The contents of a file, trailing whitespace removed; nullopt when it cannot be read.
std::optional<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

// Debian's CA bundle (package ca-certificates, also in the controller image).
constexpr char kSystemCaFile[] = "/etc/ssl/certs/ca-certificates.crt";

struct ResolveFlags {
  std::vector<std::string> platforms;
  std::vector<std::string> plain_http;
  std::string ca_file = kSystemCaFile;
  std::string username;
  std::string password_file;
};

// rollgate resolve IMAGE: exit 0 resolved, 1 the registry said no (or could not be reached),
// 2 usage. The password is read from a file, never taken on the command line or printed.
int Resolve(const std::string& image, const ResolveFlags& f) {
  auto ref = rollout::ParseImageRef(image);
  if (!ref.ok()) {
    std::fprintf(stderr, "rollgate: %s\n", ref.status().message().c_str());
    return 2;
  }
  std::vector<rollout::Platform> want;
  for (const auto& p :
       f.platforms.empty() ? std::vector<std::string>{"linux/amd64"} : f.platforms) {
    auto parsed = rollout::ParsePlatform(p);
    if (!parsed.ok()) {
      std::fprintf(stderr, "rollgate: --platform: %s\n", parsed.status().message().c_str());
      return 2;
    }
    want.push_back(*parsed);
  }
  rollout::RegistryClientOptions opts;
  opts.plain_http = f.plain_http;
  opts.user_agent = std::string("rollgate/") + ROLLGATE_VERSION;
  if (!f.ca_file.empty()) {
    auto ca = ReadSecretFile(f.ca_file);
    if (!ca && f.ca_file == kSystemCaFile) ca = "";  // no system bundle: only plain HTTP works
    if (!ca) {
      std::fprintf(stderr, "rollgate: --registry-ca-file: cannot read %s\n", f.ca_file.c_str());
      return 2;
    }
    opts.ca_pem = *ca + "\n";
  }
  if (!f.username.empty()) {
    auto password =
        f.password_file.empty() ? std::optional<std::string>("") : ReadSecretFile(f.password_file);
    if (!password) {
      std::fprintf(stderr, "rollgate: --registry-password-file: cannot read %s\n",
                   f.password_file.c_str());
      return 2;
    }
    opts.credentials =
        [user = f.username, pw = *password, host = ref->registry](
            std::string_view registry) -> std::optional<rollout::RegistryCredential> {
      if (registry != host) return std::nullopt;
      return rollout::RegistryCredential{user, pw};
    };
  }
  auto client = rollout::NewRegistryClient(std::move(opts));
  auto got = client->Resolve(*ref, want);
  if (!got.ok()) {
    std::fprintf(stderr, "rollgate: %s\n", got.status().ToString().c_str());
    return 1;
  }
  std::printf("%s  %s  %s\n", image.c_str(), got->digest.c_str(), got->media_type.c_str());
  std::string platforms;
  for (const auto& p : got->platforms) platforms += (platforms.empty() ? "" : ", ") + p.ToString();
  std::printf("  platforms: %s\n", platforms.c_str());
  for (const auto& p : want) {
    bool found = false;
    for (const auto& i : got->images) {
      if (!(i.platform == p)) continue;
      found = true;
      std::printf("  %-16s %s  %s (%lld bytes)\n", p.ToString().c_str(), i.digest.c_str(),
                  rollout::HumanBytes(i.size).c_str(), static_cast<long long>(i.size));
    }
    if (!found) std::printf("  %-16s not offered\n", p.ToString().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubeconfig;
  std::string context;
  std::string ns;
  bool all_namespaces = false;
  FlagSet fs("rollgate");
  fs.String("kubeconfig", &kubeconfig,
            "path to a kubeconfig (default $KUBECONFIG, ~/.kube/config)");
  fs.String("context", &context, "kubeconfig context");
  fs.String("namespace", &ns, "namespace of the rollout (default: the context's namespace)");
  fs.Bool("all-namespaces", &all_namespaces, "list: every namespace");
  ResolveFlags rf;
  fs.List("platform", &rf.platforms, "resolve: platforms os/arch[/variant] (default linux/amd64)");
  fs.List("plain-http", &rf.plain_http, "resolve: registries (host[:port]) spoken to over HTTP");
  fs.String("registry-ca-file", &rf.ca_file,
            "resolve: PEM CAs trusted for HTTPS registries (default: the system bundle)");
  fs.String("registry-username", &rf.username, "resolve: user name for the image's registry");
  fs.String("registry-password-file", &rf.password_file,
            "resolve: file holding that user's password (never on the command line)");
  // Short forms users expect from kubectl.
  std::vector<const char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-n") {
      args.push_back("--namespace");
    } else if (a == "-A") {
      args.push_back("--all-namespaces");
    } else {
      args.push_back(argv[i]);
    }
  }
  bool help = false;
  if (Status st = fs.Parse(static_cast<int>(args.size()), args.data(), &help); !st.ok()) {
    return Usage(fs, st.message());
  }
  const auto& pos = fs.positional();
  if (help || pos.empty()) return Usage(fs, "");
  const std::string verb = pos[0];
  if (verb == "version") {
    std::printf("rollgate %s\n", ROLLGATE_VERSION);
    return 0;
  }
  if (verb == "resolve") {
    if (pos.size() != 2) return Usage(fs, "resolve needs exactly one image reference");
    return Resolve(pos[1], rf);
  }
  const bool needs_name =
      verb == "status" || verb == "promote" || verb == "abort" || verb == "retry";
  if (!needs_name && verb != "list") return Usage(fs, "unknown command \"" + verb + "\"");
  if (needs_name && pos.size() != 2) return Usage(fs, verb + " needs exactly one rollout name");

  auto getenv = [](const std::string& n) -> std::optional<std::string> {
    const char* v = std::getenv(n.c_str());  // NOLINT(concurrency-mt-unsafe): single-threaded
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  auto cfg = kube::LoadDefault(kubeconfig, context, getenv);
  if (!cfg.ok()) {
    std::fprintf(stderr, "rollgate: %s\n", cfg.status().message().c_str());
    return 2;
  }
  if (ns.empty()) ns = cfg->namespace_.empty() ? "default" : cfg->namespace_;
  RealClock clock;
  auto client = kube::RestClient::FromConfig(*cfg, clock, {});
  if (!client.ok()) {
    std::fprintf(stderr, "rollgate: %s\n", client.status().message().c_str());
    return 2;
  }
  const auto rt = kube::resources::ContainerRollouts();

  if (verb == "list") {
    auto list = kube::ListAll(**client, rt, all_namespaces ? "" : ns, {});
    if (!list.ok()) {
      std::fprintf(stderr, "rollgate: %s\n", list.status().ToString().c_str());
      return 1;
    }
    std::printf("%-12s %-28s %-16s %-14s %s\n", "NAMESPACE", "NAME", "PHASE", "ENVIRONMENT",
                "REVISION");
    for (const auto& item : list->items) {
      auto r = api::DecodeRollout(item);
      if (!r.ok()) continue;
      std::printf("%-12s %-28s %-16s %-14s %lld\n", r->namespace_.c_str(), r->name.c_str(),
                  api::PhaseName(r->status.phase).c_str(), r->status.current_environment.c_str(),
                  static_cast<long long>(r->status.revision));
    }
    return 0;
  }
  const std::string name = pos[1];
  if (verb == "status") {
    auto obj = (*client)->Get(rt, ns, name);
    if (!obj.ok()) {
      std::fprintf(stderr, "rollgate: %s\n", obj.status().ToString().c_str());
      return 1;
    }
    auto r = api::DecodeRollout(*obj);
    if (!r.ok()) {
      std::fprintf(stderr, "rollgate: %s/%s: %s\n", ns.c_str(), name.c_str(),
                   r.status().message().c_str());
      return 1;
    }
    PrintStatus(*r);
    return 0;
  }
  // promote | abort | retry: a new annotation value, acted on once by the controller.
  const auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock.WallNow().time_since_epoch())
          .count();
  const std::string value =
      api::FormatTime(clock.WallNow()) + "/" + std::to_string(now % 1000000000);
  kube::Json patch = kube::Json::object();
  patch["metadata"]["annotations"]["rollgate.io/" + verb] = kube::Json::string(value);
  auto res = (*client)->Patch(rt, ns, name, kube::PatchType::kMerge, patch.serialize(), {});
  if (!res.ok()) {
    std::fprintf(stderr, "rollgate: %s\n", res.status().ToString().c_str());
    return 1;
  }
  std::printf("%s requested for %s/%s (rollgate.io/%s=%s)\n", verb.c_str(), ns.c_str(),
              name.c_str(), verb.c_str(), value.c_str());
  return 0;
}
