#include "controller/cli/cluster.h"

#include <yaml-cpp/emitter.h>
#include <yaml-cpp/emittermanip.h>

#include <cstdint>

#include "controller/common/base64.h"

namespace rollgate::cli {
namespace {

// The ConfigMap every namespace gets (kube-controller-manager's root CA publisher): the CA that
// signs the API server's serving certificate inside the cluster.
constexpr char kRootCaConfigMap[] = "kube-root-ca.crt";

std::string Emitted(const YAML::Emitter& e) { return std::string(e.c_str()) + "\n"; }

// The CA bundle: the kubeconfig's, else the namespace's kube-root-ca.crt (ca.crt).
Result<std::string> CaBundle(kube::KubeClient& client, const std::string& ns,
                             const kube::RestConfig& current) {
  if (!current.ca_pem.empty()) return current.ca_pem;
  auto cm = client.Get(kube::ResourceType::Core("v1", "configmaps"), ns, kRootCaConfigMap);
  if (!cm.ok()) {
    return Status(StatusCode::kInvalidArgument,
                  "the kubeconfig has no certificate-authority(-data), and the ConfigMap " + ns +
                      "/" + kRootCaConfigMap + " cannot be read: " + cm.status().message());
  }
  const auto& obj = cm->as_object();
  const auto data = obj.find("data");
  if (data != obj.end() && data->second.is_object()) {
    const auto& d = data->second.as_object();
    const auto ca = d.find("ca.crt");
    if (ca != d.end() && ca->second.is_string() && !ca->second.as_string().empty()) {
      return ca->second.as_string();
    }
  }
  return Status(StatusCode::kInvalidArgument,
                "the kubeconfig has no certificate-authority(-data), and the ConfigMap " + ns +
                    "/" + kRootCaConfigMap + " has no key ca.crt");
}

std::string StringAt(const kube::Json& obj, const char* a, const char* b) {
  if (!obj.is_object() || !obj.has_field(a)) return "";
  const auto& inner = obj.at(a);
  if (!inner.is_object() || !inner.has_field(b) || !inner.at(b).is_string()) return "";
  return inner.at(b).as_string();
}

std::int64_t IntAt(const kube::Json& obj, const char* a, const char* b) {
  if (!obj.is_object() || !obj.has_field(a)) return 0;
  const auto& inner = obj.at(a);
  if (!inner.is_object() || !inner.has_field(b) || !inner.at(b).is_integer()) return 0;
  return inner.at(b).as_number().to_int64();
}

}  // namespace

std::string RenderKubeconfig(const RemoteKubeconfig& k) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "apiVersion" << YAML::Value << "v1";
  e << YAML::Key << "kind" << YAML::Value << "Config";
  e << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << k.name;
  e << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "server" << YAML::Value << k.server;
  e << YAML::Key << "certificate-authority-data" << YAML::Value << EncodeBase64(k.ca_pem);
  if (!k.tls_server_name.empty()) {
    e << YAML::Key << "tls-server-name" << YAML::Value << k.tls_server_name;
  }
  e << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  e << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << k.name;
  e << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "token" << YAML::Value << k.token;
  e << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  e << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << k.name;
  e << YAML::Key << "context" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "cluster" << YAML::Value << k.name;
  e << YAML::Key << "user" << YAML::Value << k.name;
  e << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  e << YAML::Key << "current-context" << YAML::Value << k.name;
  e << YAML::EndMap;
  return Emitted(e);
}

std::string RenderKubeconfigSecret(const std::string& secret, const std::string& kubeconfig) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "apiVersion" << YAML::Value << "v1";
  e << YAML::Key << "kind" << YAML::Value << "Secret";
  e << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << secret;
  e << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "app.kubernetes.io/part-of" << YAML::Value << "rollgate";
  e << YAML::EndMap << YAML::EndMap;
  e << YAML::Key << "type" << YAML::Value << "Opaque";
  e << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "value" << YAML::Value << EncodeBase64(kubeconfig);
  e << YAML::EndMap << YAML::EndMap;
  return Emitted(e);
}

std::string FormatDuration(std::int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string out;
  if (seconds >= 3600) out += std::to_string(seconds / 3600) + "h";
  if (seconds % 3600 >= 60) out += std::to_string(seconds % 3600 / 60) + "m";
  if (seconds % 60 != 0) out += std::to_string(seconds % 60) + "s";
  return out;
}

int ClusterKubeconfig(kube::KubeClient& client, const Options& o, const std::string& ns,
                      const kube::RestConfig& current, const Io& io) {
  const ClusterKubeconfigFlags& c = o.cluster;
  RemoteKubeconfig k;
  k.name = c.name.empty() ? kDefaultClusterName : c.name;
  k.server = c.server.empty() ? current.server : c.server;
  k.tls_server_name = c.tls_server_name;
  if (k.server.rfind("https://", 0) != 0) {
    return Fail(io, "the kubeconfig's server " + k.server +
                        " is not https://, and a hub accepts only https: give --server with the "
                        "API server's https:// URL as the hub reaches it");
  }
  auto ca = CaBundle(client, ns, current);
  if (!ca.ok()) return Fail(io, ca.status().message());
  k.ca_pem = *ca;

  const std::string who = "ServiceAccount " + ns + "/" + c.service_account;
  const std::int64_t requested = c.expiration_seconds > 0 ? c.expiration_seconds : 31536000;
  kube::Json body = kube::Json::object();
  body["apiVersion"] = kube::Json::string("authentication.k8s.io/v1");
  body["kind"] = kube::Json::string("TokenRequest");
  body["spec"] = kube::Json::object();
  body["spec"]["expirationSeconds"] = kube::Json::number(requested);
  // POST .../serviceaccounts/NAME/token: the subresource as the collection to create in.
  const auto token_rt = kube::ResourceType::Core(
      "v1", "serviceaccounts/" + kube::QueryEscape(c.service_account) + "/token");
  auto res = client.Create(token_rt, ns, body);
  if (!res.ok()) {
    std::string hint;
    if (res.status().code() == StatusCode::kNotFound) {
      hint = " (is the chart installed with mode=target in namespace " + ns +
             "? -n names it, --service-account the ServiceAccount)";
    }
    return Fail(io, "cannot get a token for " + who + ": " + res.status().message() + hint);
  }
  k.token = StringAt(*res, "status", "token");
  if (k.token.empty()) return Fail(io, "the API server returned no token for " + who);

  const std::string kubeconfig = RenderKubeconfig(k);
  // What the hub will do with it: refuse it here rather than there.
  if (auto parsed = kube::ParseRemoteKubeconfig(kubeconfig, "the kubeconfig for " + who);
      !parsed.ok()) {
    return Fail(io, parsed.status().message());
  }
  io.out(c.secret.empty() ? kubeconfig : RenderKubeconfigSecret(c.secret, kubeconfig));

  const std::int64_t granted = IntAt(*res, "spec", "expirationSeconds");
  std::string note = "token of " + who + " for " + k.server;
  const std::string expiry = StringAt(*res, "status", "expirationTimestamp");
  note += expiry.empty() ? ": expiry unknown" : ": expires " + expiry;
  if (granted > 0 && granted < requested) {
    note += " (the API server shortened the requested " + FormatDuration(requested) + " to " +
            FormatDuration(granted) + ")";
  }
  io.err(note + "\n");
  return 0;
}

}  // namespace rollgate::cli
