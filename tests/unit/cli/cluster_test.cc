// rollgate cluster kubeconfig: its command line, the kubeconfig and Secret it prints (read back
// with the hub's strict parser, kube::ParseRemoteKubeconfig), the TokenRequest it sends, the CA
// fallback, its errors, and that the token never reaches stderr.
#include "controller/cli/cluster.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/cli/completion.h"
#include "controller/common/base64.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::cli {
namespace {

constexpr char kCa[] = "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n";
constexpr char kRootCa[] =
    "-----BEGIN CERTIFICATE-----\nMIIBrootCAfromConfigMap\n-----END CERTIFICATE-----\n";
// A token shaped like a bound ServiceAccount token (a JWT).
constexpr char kToken[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNlY3JldA";

Result<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "rollgate");
  return ParseArgs(args);
}

std::string UsageError(std::vector<std::string> args) {
  auto o = Parse(std::move(args));
  if (o.ok()) return "(accepted)";
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  return o.status().message();
}

TEST(ClusterArgsTest, DefaultsAndFlags) {
  auto o = Parse({"cluster", "kubeconfig"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->verb, Verb::kClusterKubeconfig);
  EXPECT_EQ(o->cluster.service_account, "rollgate-target");
  EXPECT_EQ(o->cluster.duration, "8760h");
  EXPECT_EQ(o->cluster.expiration_seconds, 8760 * 3600);
  EXPECT_EQ(o->cluster.name, "rollgate-target");
  EXPECT_EQ(o->cluster.secret, "");

  o = Parse({"cluster", "kubeconfig", "-n", "rollgate-system", "--service-account", "hub-sa",
             "--duration=1h30m", "--server", "https://10.0.0.1:6443", "--tls-server-name",
             "api.prod.example", "--secret", "prod-eu"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->namespace_, "rollgate-system");
  EXPECT_EQ(o->cluster.service_account, "hub-sa");
  EXPECT_EQ(o->cluster.expiration_seconds, 5400);
  EXPECT_EQ(o->cluster.server, "https://10.0.0.1:6443");
  EXPECT_EQ(o->cluster.tls_server_name, "api.prod.example");
  EXPECT_EQ(o->cluster.name, "prod-eu");  // the Secret's name, unless --name

  o = Parse({"cluster", "kubeconfig", "--secret", "prod-eu", "--name", "prod_EU.1"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->cluster.name, "prod_EU.1");
}

TEST(ClusterArgsTest, UsageErrors) {
  EXPECT_EQ(UsageError({"cluster"}), "cluster needs a subcommand: cluster kubeconfig");
  EXPECT_EQ(UsageError({"cluster", "list"}),
            "unknown cluster subcommand \"list\" (there is: cluster kubeconfig)");
  EXPECT_EQ(UsageError({"cluster", "kubeconfig", "extra"}),
            "cluster kubeconfig takes no arguments");
  EXPECT_EQ(UsageError({"cluster", "kubeconfig", "--duration", "5m"}),
            "--duration 5m is shorter than 10m, the API server's minimum");
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--duration", "1d"}).find("is not a duration"),
            std::string::npos);
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--server", "http://10.0.0.1:6443"})
                .find("--server must be an https:// URL"),
            std::string::npos);
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--server", "https://user:pw@10.0.0.1"})
                .find("no user information"),
            std::string::npos);
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--server", "https://"}).find("with a host"),
            std::string::npos);
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--secret", "Prod_EU"})
                .find("is not a valid Secret name"),
            std::string::npos);
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--service-account", "a/b"})
                .find("is not a valid ServiceAccount name"),
            std::string::npos);
  EXPECT_NE(UsageError({"cluster", "kubeconfig", "--name", "a b"}).find("--name \"a b\""),
            std::string::npos);
  EXPECT_NE(
      UsageError({"cluster", "kubeconfig", "--tls-server-name", "a/b"}).find("is not a host name"),
      std::string::npos);
  EXPECT_EQ(UsageError({"cluster", "kubeconfig", "-o", "yaml"}),
            "-o/--output applies to list, get, history and diff, not cluster");
  EXPECT_EQ(UsageError({"cluster", "kubeconfig", "-A"}),
            "-A/--all-namespaces applies to list, get and dashboard, not cluster");
  // Its flags belong to it alone.
  EXPECT_EQ(UsageError({"get", "web", "--secret", "x"}),
            "--secret applies to cluster kubeconfig, not get");
  EXPECT_EQ(UsageError({"list", "--server", "https://a"}),
            "--server applies to cluster kubeconfig, not list");
}

TEST(ClusterArgsTest, ParseTokenDuration) {
  EXPECT_EQ(*ParseTokenDuration("8760h"), 31536000);
  EXPECT_EQ(*ParseTokenDuration("1h30m15s"), 5415);
  EXPECT_EQ(*ParseTokenDuration("600s"), 600);
  EXPECT_EQ(*ParseTokenDuration("90m"), 5400);
  for (const char* bad :
       {"", "h", "10", "1.5h", "1d", "-1h", "0h", "0s", "1h 2m", "99999999999h", "600000h"}) {
    EXPECT_FALSE(ParseTokenDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatDuration(31536000), "8760h");
  EXPECT_EQ(FormatDuration(5415), "1h30m15s");
  EXPECT_EQ(FormatDuration(600), "10m");
}

TEST(ClusterArgsTest, HelpAndCompletion) {
  const std::string help = UsageText("rollgate");
  EXPECT_NE(help.find("  cluster kubeconfig "), std::string::npos);
  for (const char* flag : {"--service-account value", "--duration value", "--server value",
                           "--tls-server-name value", "--secret value", "--name value"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  auto c = Complete({"clu"}, nullptr);
  EXPECT_EQ(c.candidates, std::vector<std::string>{"cluster"});
  c = Complete({"cluster", ""}, nullptr);
  EXPECT_EQ(c.candidates, std::vector<std::string>{"kubeconfig"});
  c = Complete({"cluster", "kubeconfig", ""}, nullptr);
  EXPECT_TRUE(c.candidates.empty());
  c = Complete({"cluster", "kubeconfig", "--se"}, nullptr);
  EXPECT_EQ(c.candidates, (std::vector<std::string>{"--secret", "--server", "--service-account"}));
  c = Complete({"cluster", "kubeconfig", "--tls"}, nullptr);
  EXPECT_EQ(c.candidates, std::vector<std::string>{"--tls-server-name"});
}

TEST(ClusterRenderTest, KubeconfigIsAcceptedByTheHubsParser) {
  RemoteKubeconfig k{"prod-eu", "https://10.0.0.1:6443", kCa, "", kToken};
  const std::string text = RenderKubeconfig(k);
  auto cfg = kube::ParseRemoteKubeconfig(text, "test");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message() << "\n" << text;
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");
  EXPECT_EQ(cfg->ca_pem, kCa);
  EXPECT_EQ(cfg->tls_server_name, "");
  ASSERT_NE(cfg->token, nullptr);
  EXPECT_EQ(*cfg->token->Token(), kToken);
  EXPECT_TRUE(cfg->client_cert_pem.empty());
  EXPECT_EQ(text.find("tls-server-name"), std::string::npos);

  k.tls_server_name = "api.prod.example";
  k.server = "https://203.0.113.7:443/prefix";
  cfg = kube::ParseRemoteKubeconfig(RenderKubeconfig(k), "test");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server, "https://203.0.113.7:443/prefix");
  EXPECT_EQ(cfg->tls_server_name, "api.prod.example");
  // Its own (only) context is the current one, and is found by name too.
  EXPECT_TRUE(kube::ParseRemoteKubeconfig(RenderKubeconfig(k), "test", "prod-eu").ok());
}

TEST(ClusterRenderTest, SecretHoldsTheKubeconfigUnderValue) {
  const std::string kubeconfig =
      RenderKubeconfig({"prod-eu", "https://10.0.0.1:6443", kCa, "api.prod.example", kToken});
  const std::string secret = RenderKubeconfigSecret("prod-eu", kubeconfig);
  const YAML::Node n = YAML::Load(secret);
  EXPECT_EQ(n["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(n["kind"].as<std::string>(), "Secret");
  EXPECT_EQ(n["metadata"]["name"].as<std::string>(), "prod-eu");
  EXPECT_FALSE(n["metadata"]["namespace"]);  // the hub's rollout namespace: kubectl apply -n
  EXPECT_EQ(n["type"].as<std::string>(), "Opaque");
  const auto value = DecodeBase64(n["data"]["value"].as<std::string>());
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(*value, kubeconfig);
  EXPECT_TRUE(kube::ParseRemoteKubeconfig(*value, "Secret prod-eu").ok());
  EXPECT_EQ(secret.find(kToken), std::string::npos);  // only base64'd inside the kubeconfig
}

// The TokenRequest and the kube-root-ca.crt ConfigMap; records what it was asked.
class TokenClient : public testing::UnimplementedClient {
 public:
  Result<kube::Json> Create(const kube::ResourceType& rt, const std::string& ns,
                            const kube::Json& obj) override {
    created.push_back(rt.group + "/" + rt.version + "/" + rt.resource + " in " + ns);
    body = obj;
    if (create_error) return *create_error;
    kube::Json r = obj;
    r["status"] = kube::Json::object();
    if (!token.empty()) r["status"]["token"] = kube::Json::string(token);
    r["status"]["expirationTimestamp"] = kube::Json::string("2027-12-03T02:00:00Z");
    if (granted > 0) r["spec"]["expirationSeconds"] = kube::Json::number(granted);
    return r;
  }
  Result<kube::Json> Get(const kube::ResourceType& rt, const std::string& ns,
                         const std::string& name) override {
    gets.push_back(rt.resource + " " + ns + "/" + name);
    if (root_ca.empty()) return Status(StatusCode::kForbidden, "configmaps is forbidden");
    kube::Json cm = kube::Json::object();
    cm["data"] = kube::Json::object();
    cm["data"]["ca.crt"] = kube::Json::string(root_ca);
    return cm;
  }

  std::vector<std::string> created;
  std::vector<std::string> gets;
  kube::Json body;
  std::optional<Status> create_error;
  std::string token = kToken;
  std::string root_ca;
  std::int64_t granted = 0;
};

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

Outcome Invoke(TokenClient& client, std::vector<std::string> args,
               const kube::RestConfig& current) {
  auto o = Parse(std::move(args));
  EXPECT_TRUE(o.ok()) << o.status().message();
  Outcome r;
  Io io;
  io.out = [&](const std::string& s) { r.out += s; };
  io.err = [&](const std::string& s) { r.err += s; };
  const std::string ns = o->namespace_.empty() ? "default" : o->namespace_;
  r.code = ClusterKubeconfig(client, *o, ns, current, io);
  return r;
}

kube::RestConfig Current() {
  kube::RestConfig c;
  c.server = "https://127.0.0.1:6443";
  c.ca_pem = kCa;
  return c;
}

TEST(ClusterKubeconfigTest, PrintsAKubeconfigForTheServiceAccountsToken) {
  TokenClient client;
  const Outcome r = Invoke(client, {"cluster", "kubeconfig", "-n", "rollgate-system"}, Current());
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(client.created.size(), 1U);
  EXPECT_EQ(client.created[0], "/v1/serviceaccounts/rollgate-target/token in rollgate-system");
  EXPECT_EQ(client.body.at("kind").as_string(), "TokenRequest");
  EXPECT_EQ(client.body.at("apiVersion").as_string(), "authentication.k8s.io/v1");
  EXPECT_EQ(client.body.at("spec").at("expirationSeconds").as_number().to_int64(), 31536000);
  EXPECT_TRUE(client.gets.empty());  // the kubeconfig's CA: no ConfigMap read

  auto cfg = kube::ParseRemoteKubeconfig(r.out, "stdout");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:6443");
  EXPECT_EQ(cfg->ca_pem, kCa);
  EXPECT_EQ(*cfg->token->Token(), kToken);
  EXPECT_EQ(YAML::Load(r.out)["current-context"].as<std::string>(), "rollgate-target");

  EXPECT_EQ(r.err,
            "token of ServiceAccount rollgate-system/rollgate-target for https://127.0.0.1:6443: "
            "expires 2027-12-03T02:00:00Z\n");
  EXPECT_EQ(r.err.find(kToken), std::string::npos);
}

TEST(ClusterKubeconfigTest, ServerOverrideTlsNameSecretAndShortenedExpiry) {
  TokenClient client;
  client.granted =
      std::int64_t{24} * 3600;  // the API server's --service-account-max-token-expiration
  const Outcome r = Invoke(client,
                           {"cluster", "kubeconfig", "-n", "rg", "--service-account", "hub",
                            "--duration", "720h", "--server", "https://203.0.113.7:6443",
                            "--tls-server-name", "api.prod.example", "--secret", "prod-eu"},
                           Current());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(client.created[0], "/v1/serviceaccounts/hub/token in rg");
  EXPECT_EQ(client.body.at("spec").at("expirationSeconds").as_number().to_int64(), 720 * 3600);
  const YAML::Node secret = YAML::Load(r.out);
  EXPECT_EQ(secret["kind"].as<std::string>(), "Secret");
  EXPECT_EQ(secret["metadata"]["name"].as<std::string>(), "prod-eu");
  const auto kubeconfig = DecodeBase64(secret["data"]["value"].as<std::string>());
  ASSERT_TRUE(kubeconfig.has_value());
  auto cfg = kube::ParseRemoteKubeconfig(*kubeconfig, "Secret rg/prod-eu", "prod-eu");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->server, "https://203.0.113.7:6443");
  EXPECT_EQ(cfg->tls_server_name, "api.prod.example");
  EXPECT_EQ(*cfg->token->Token(), kToken);
  EXPECT_NE(r.err.find("expires 2027-12-03T02:00:00Z (the API server shortened the requested "
                       "720h to 24h)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find(kToken), std::string::npos);
  EXPECT_EQ(r.out.find(kToken), std::string::npos);  // base64'd inside the Secret
}

TEST(ClusterKubeconfigTest, CaFromKubeRootCaConfigMapWhenTheKubeconfigHasNone) {
  TokenClient client;
  client.root_ca = kRootCa;
  kube::RestConfig current = Current();
  current.ca_pem.clear();
  const Outcome r = Invoke(client, {"cluster", "kubeconfig", "-n", "rg"}, current);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(client.gets, std::vector<std::string>{"configmaps rg/kube-root-ca.crt"});
  auto cfg = kube::ParseRemoteKubeconfig(r.out, "stdout");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->ca_pem, kRootCa);

  client.root_ca.clear();  // forbidden
  const Outcome failed = Invoke(client, {"cluster", "kubeconfig", "-n", "rg"}, current);
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.out, "");
  EXPECT_EQ(failed.err,
            "error: the kubeconfig has no certificate-authority(-data), and the ConfigMap "
            "rg/kube-root-ca.crt cannot be read: configmaps is forbidden\n");
}

TEST(ClusterKubeconfigTest, Failures) {
  TokenClient client;
  client.create_error =
      Status(StatusCode::kNotFound, "serviceaccounts \"rollgate-target\" not found");
  Outcome r = Invoke(client, {"cluster", "kubeconfig", "-n", "rg"}, Current());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: cannot get a token for ServiceAccount rg/rollgate-target: serviceaccounts "
            "\"rollgate-target\" not found (is the chart installed with mode=target in namespace "
            "rg? -n names it, --service-account the ServiceAccount)\n");

  client.create_error = Status(StatusCode::kForbidden, "serviceaccounts/token is forbidden");
  r = Invoke(client, {"cluster", "kubeconfig", "-n", "rg"}, Current());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "error: cannot get a token for ServiceAccount rg/rollgate-target: "
            "serviceaccounts/token is forbidden\n");

  client.create_error.reset();
  client.token.clear();
  r = Invoke(client, {"cluster", "kubeconfig", "-n", "rg"}, Current());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "error: the API server returned no token for ServiceAccount rg/rollgate-target\n");

  // An http:// kubeconfig server (e.g. a local insecure port): the hub accepts only https.
  client.token = kToken;
  kube::RestConfig current = Current();
  current.server = "http://127.0.0.1:8080";
  const std::size_t before = client.created.size();
  r = Invoke(client, {"cluster", "kubeconfig"}, current);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("error: the kubeconfig's server http://127.0.0.1:8080 is not https://"),
            std::string::npos);
  EXPECT_EQ(client.created.size(), before);  // no token was made
  // --server replaces it.
  r = Invoke(client, {"cluster", "kubeconfig", "--server", "https://10.1.2.3:6443"}, current);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(kube::ParseRemoteKubeconfig(r.out, "stdout")->server, "https://10.1.2.3:6443");
}

}  // namespace
}  // namespace rollgate::cli
