#include "tests/e2e/support/cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <system_error>

#include "controller/kube/kube_config.h"
#include "tests/e2e/support/json.h"
#include "tests/e2e/support/process.h"

namespace rollgate::e2e {

namespace resources = kube::resources;

std::string EnvVar(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): tests are single-threaded
  return v == nullptr ? std::string() : std::string(v);
}

std::string RequireEnv(std::initializer_list<const char*> names) {
  std::vector<std::string> all(names.begin(), names.end());
  bool missing = false;
  for (const auto& n : all) missing = missing || EnvVar(n.c_str()).empty();
  if (!missing) return "";
  std::string out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) out += i + 1 == all.size() ? " and " : ", ";
    out += all[i];
  }
  return out + " must be set (ctest sets them)";
}

std::string TestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info == nullptr ? std::string() : info->name();
}

std::string UniquePrefix(const std::string& base) {
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", rd() & 0xffffu);
  return base + "-" + std::to_string(::getpid()) + "-" + suffix;
}

std::filesystem::path LogDir(const std::string& name) {
  const std::string dir = EnvVar("ROLLGATE_E2E_LOG_DIR");
  std::filesystem::path path =
      dir.empty() ? std::filesystem::current_path() / name : std::filesystem::path(dir);
  std::filesystem::create_directories(path);
  return path;
}

std::string MakeTempDir(const std::string& name) {
  const std::string tmp = EnvVar("TMPDIR");
  std::string templ = (tmp.empty() ? std::string("/tmp") : tmp) + "/" + name + ".XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

Cluster& Cluster::Get() {
  static auto* c = new Cluster();  // never destroyed: outlives every test
  return *c;
}

std::string Cluster::Connect(const kube::RestClientOptions& options) {
  auto cfg = kube::LoadKubeconfig({kubeconfig(), ""});
  if (!cfg.ok()) return cfg.status().ToString();
  auto c = kube::RestClient::FromConfig(*cfg, clock_, options);
  if (!c.ok()) return c.status().ToString();
  client_ = std::move(c).value();
  return "";
}

int Cluster::Kubectl(const std::vector<std::string>& args, std::string& out) {
  std::vector<std::string> argv = {EnvVar("CONTROL_PLANE_BIN") + "/kubectl", "--kubeconfig",
                                   kubeconfig()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out);
}

std::string Cluster::ApplyCrd(const std::string& field_manager) {
  std::vector<std::string> args = {"apply", "--server-side", "--force-conflicts"};
  if (!field_manager.empty()) args.push_back("--field-manager=" + field_manager);
  args.insert(args.end(), {"-f", EnvVar("ROLLGATE_CRD")});
  std::string out;
  int rc = Kubectl(args, out);
  if (rc != 0) return "kubectl apply of the CRD failed (" + std::to_string(rc) + "): " + out;
  rc = Kubectl(
      {"wait", "--for=condition=Established", "--timeout=60s", "crd/containerrollouts.rollgate.io"},
      out);
  if (rc != 0) return "the CRD did not become Established: " + out;
  return "";
}

std::string Cluster::CreateNamespace(const std::string& name,
                                     const std::map<std::string, std::string>& labels) {
  Json obj = Obj(
      {{"apiVersion", S("v1")}, {"kind", S("Namespace")}, {"metadata", Obj({{"name", S(name)}})}});
  if (!labels.empty()) obj["metadata"]["labels"] = StrObj(labels);
  auto created = client_->Create(resources::Namespaces(), "", obj);
  if (!created.ok()) return "create namespace " + name + ": " + created.status().ToString();
  namespaces_.push_back(name);
  return "";
}

std::string Cluster::WaitForServiceAccount(const std::string& ns, const Deadline& deadline) {
  while (!client_->Get(kube::ResourceType::Core("v1", "serviceaccounts"), ns, "default").ok()) {
    if (deadline.Passed()) return "no default service account in " + ns;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return "";
}

void Cluster::DeleteNamespace(const std::string& name) {
  if (EnvVar("ROLLGATE_E2E_KEEP_NAMESPACES") == "1" || !client_) return;
  kube::DeleteOptions d;
  d.propagation_policy = "Background";
  (void)client_->Delete(resources::Namespaces(), "", name, d);
}

void Cluster::DeleteNamespaces() {
  for (const auto& ns : namespaces_) DeleteNamespace(ns);
  namespaces_.clear();
}

bool Cluster::NodesReady() {
  auto nodes = kube::ListAll(*client_, resources::Nodes(), "", {});
  if (!nodes.ok() || nodes->items.empty()) return false;
  for (const auto& n : nodes->items) {
    const Json* c = Find(n, "status.conditions", "type", "Ready");
    if (c == nullptr || Str(*c, "status") != "True") return false;
  }
  return true;
}

std::string Cluster::ClusterSh(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", EnvVar("ROLLGATE_CLUSTER_SH")};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int rc = RunCommand(argv, out);
  std::cout << out << std::flush;
  if (rc == 0) return "";
  return "hack/cluster.sh " + args[0] + " exited " + std::to_string(rc) + ": " + out;
}

std::string Cluster::LeaseHolder(const std::string& ns, const std::string& name) {
  auto l = client_->Get(resources::Leases(), ns, name);
  return l.ok() ? Str(*l, "spec.holderIdentity") : std::string("(unreadable)");
}

}  // namespace rollgate::e2e
