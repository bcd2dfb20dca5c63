// The shared cluster of the e2e tests (the `cluster` fixture of tests/e2e/CMakeLists.txt, a real
// local control plane started by hack/cluster.sh): what ctest tells every test about it through the
// environment, a RestClient on it, kubectl, the ContainerRollout CRD, namespaces the tests create
// (and delete at the end), its nodes, and hack/cluster.sh to stop and start its components. Also
// the per-run names and directories the tests keep their objects and logs under.
// Thread-safety: single-threaded tests; Cluster::Get() is one process-wide object that the test
// suites connect in turn (gtest runs them one after the other).
#pragma once

#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/common/clock.h"
#include "controller/kube/rest_client.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {

// The variable's value, "" when unset.
std::string EnvVar(const char* name);

// "" when every variable is set, else "A, B and C must be set (ctest sets them)".
std::string RequireEnv(std::initializer_list<const char*> names);

// The running test's name ("" outside a test).
std::string TestName();

// "<base>-<pid>-<4 random hex digits>": a prefix of every namespace one run creates.
std::string UniquePrefix(const std::string& base);

// Where a suite writes its controllers' logs: ROLLGATE_E2E_LOG_DIR, else <cwd>/<name>. Created.
std::filesystem::path LogDir(const std::string& name);

// A new directory $TMPDIR/<name>.XXXXXX (TMPDIR defaults to /tmp); "" when it cannot be made.
std::string MakeTempDir(const std::string& name);

class Cluster {
 public:
  // The process-wide cluster (never destroyed: it outlives every test).
  static Cluster& Get();

  // (Re)connects a RestClient to KUBECONFIG's cluster with `options`. "" or what failed.
  std::string Connect(const kube::RestClientOptions& options = {});
  bool connected() const { return client_ != nullptr; }
  kube::RestClient& client() { return *client_; }

  // KUBECONFIG.
  std::string kubeconfig() const { return EnvVar("KUBECONFIG"); }

  // Runs $CONTROL_PLANE_BIN/kubectl --kubeconfig <KUBECONFIG> <args>: its exit code, `out` its
  // output.
  int Kubectl(const std::vector<std::string>& args, std::string& out);

  // Applies ROLLGATE_CRD server-side (as `field_manager`, kubectl's default when "") and waits
  // until the CRD is Established. "" or what failed.
  std::string ApplyCrd(const std::string& field_manager = "");

  // Creates namespace `name` with `labels`; it is deleted by DeleteNamespaces(). "" or what
  // failed.
  std::string CreateNamespace(const std::string& name,
                              const std::map<std::string, std::string>& labels = {});

  // Waits for the namespace's default ServiceAccount (made by kube-controller-manager; pods need
  // it). "" or "no default service account in <ns>" once `deadline` passed.
  std::string WaitForServiceAccount(const std::string& ns, const Deadline& deadline);

  // Deletes the namespace (background propagation), unless ROLLGATE_E2E_KEEP_NAMESPACES=1.
  void DeleteNamespace(const std::string& name);

  // Deletes every namespace CreateNamespace created.
  void DeleteNamespaces();

  // Every node has condition Ready=True.
  bool NodesReady();

  // Runs ROLLGATE_CLUSTER_SH (hack/cluster.sh) with `args`, printing its output. "" or its exit
  // code and output.
  std::string ClusterSh(const std::vector<std::string>& args);

  // spec.holderIdentity of Lease `ns`/`name`, or "(unreadable)".
  std::string LeaseHolder(const std::string& ns, const std::string& name);

 private:
  Cluster() = default;

  RealClock clock_;
  std::unique_ptr<kube::RestClient> client_;
  std::vector<std::string> namespaces_;
};

}  // namespace rollgate::e2e
