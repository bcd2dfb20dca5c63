// rollgate cluster kubeconfig: run against a target cluster (one whose environments a hub's
// rollouts reach through environments[].cluster.secretRef), it asks the TokenRequest API for a
// token of a ServiceAccount (by default the chart's target mode's, rollgate-target) and prints a
// kubeconfig for it: the server (the current kubeconfig's, or --server as the hub reaches it,
// with --tls-server-name), the CA (the current kubeconfig's, else the namespace's kube-root-ca.crt
// ConfigMap) and the token. With --secret NAME it prints a Secret holding that kubeconfig under
// key `value`, for `kubectl apply -n <rollout namespace>` in the hub. What it prints is checked
// with kube::ParseRemoteKubeconfig, the parser the hub applies to such a Secret, before it is
// printed. The token's expiry goes to stderr; the token goes nowhere but stdout.
// Thread-safety: one command at a time.
#pragma once

#include <string>

#include "controller/cli/args.h"
#include "controller/cli/commands.h"
#include "controller/kube/kube_client.h"
#include "controller/kube/kube_config.h"

namespace rollgate::cli {

// What a kubeconfig for a remote cluster holds: one cluster, user and context, all named `name`.
struct RemoteKubeconfig {
  std::string name;
  std::string server;           // https://...
  std::string ca_pem;           // the CA bundle (PEM), written as certificate-authority-data
  std::string tls_server_name;  // "": not written
  std::string token;
};

// The kubeconfig as YAML (current-context: name).
std::string RenderKubeconfig(const RemoteKubeconfig& k);

// A v1 Secret `secret` (no namespace: the one it is applied in) with the kubeconfig under `value`.
std::string RenderKubeconfigSecret(const std::string& secret, const std::string& kubeconfig);

// "8760h", "1h30m", "10m5s": seconds as a Go-style duration.
std::string FormatDuration(std::int64_t seconds);

// cluster kubeconfig in namespace `ns` of the cluster `current` describes (the loaded kubeconfig,
// whose server and CA are used unless o.cluster overrides the server). 0 printed; 1 failed
// ("error: ..." on stderr, naming neither the token nor the CA).
int ClusterKubeconfig(kube::KubeClient& client, const Options& o, const std::string& ns,
                      const kube::RestConfig& current, const Io& io);

}  // namespace rollgate::cli
