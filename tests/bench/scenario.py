"""Scenario generator: N environments (one namespace each) x M Deployments per rollout and
environment, K ContainerRollouts, two identical copies of every Deployment (one per contender:
`rg-*` for Rollgate, `bl-*` for the kubectl baseline), kwok nodes with room for the pods.

Pure functions returning API objects (dicts); bench.py creates them.
"""

import dataclasses

ROLLOUT_NS = "bench"
LABEL = "bench.rollgate.io/scenario"
CONTENDER_LABEL = "bench.rollgate.io/contender"
NODE_LABEL = "bench.rollgate.io/node"
CONTAINER = "app"
OLD_IMAGE = "registry.example.com/bench/app:1.0.0"
NEW_IMAGE = "registry.example.com/bench/app:2.0.0"

PRESETS = {
    # rollouts, environments, deployments per environment and rollout
    "small": dict(rollouts=10, envs=3, deployments=2),
    "medium": dict(rollouts=100, envs=3, deployments=2),
    "large": dict(rollouts=300, envs=3, deployments=2),
    # The memory target's size: 1,000 rollouts x 3 environments x 1 Deployment = 3,000
    # Deployments per contender, replicas 3-4 (about 10,000 pods). Run it with --no-baseline.
    "xlarge": dict(rollouts=1000, envs=3, deployments=1, min_replicas=3, max_replicas=4),
    # A burst of updates: K single-environment rollouts of one one-replica Deployment each, all
    # applied at once (the scenario the performance issue compares with Argo Rollouts).
    "burst": dict(rollouts=100, envs=1, deployments=1, min_replicas=1, max_replicas=1),
    # Adoption: 1,000 new single-environment rollouts whose Deployments already run the images
    # they name (the performance issue's "all Succeeded <= 30 s"): no patch is due, only checks.
    "settled": dict(rollouts=1000, envs=1, deployments=1, min_replicas=1, max_replicas=1,
                    on_images=True),
}


@dataclasses.dataclass
class Scenario:
    rollouts: int
    envs: int
    deployments: int
    min_replicas: int = 1
    max_replicas: int = 2
    ready_delay: str = ""  # pod-ready.stage.kwok.x-k8s.io/delay, e.g. "100ms"; "" = none
    nodes: int = 4
    on_images: bool = False  # the Deployments start on NEW_IMAGE: the rollouts patch nothing

    def env_ns(self, e):
        return "bench-env%d" % e

    def env_name(self, e):
        return "env%d" % e

    def rollout_name(self, i):
        return "r%04d" % i

    def deploy_name(self, contender, i, j):
        return "%s-%04d-%d" % ({"rollgate": "rg", "baseline": "bl"}[contender], i, j)

    def replicas(self, i, j):
        span = self.max_replicas - self.min_replicas + 1
        return self.min_replicas + (i * self.deployments + j) % span

    def targets(self, contender, i):
        """[(env index, namespace, [deployment names])] in order."""
        return [(e, self.env_ns(e), [self.deploy_name(contender, i, j)
                                     for j in range(self.deployments)])
                for e in range(self.envs)]

    def deployments_per_contender(self):
        return self.rollouts * self.envs * self.deployments

    def pods_per_contender(self):
        return sum(self.replicas(i, j) for i in range(self.rollouts)
                   for j in range(self.deployments)) * self.envs

    def describe(self):
        return {"rollouts": self.rollouts, "environments": self.envs,
                "deployments_per_env_per_rollout": self.deployments,
                "replicas": [self.min_replicas, self.max_replicas],
                "pod_ready_delay": self.ready_delay or "none",
                "deployments_start_on_new_image": self.on_images,
                "deployments_per_contender": self.deployments_per_contender(),
                "pods_per_contender": self.pods_per_contender(),
                "deployments_total": 2 * self.deployments_per_contender(),
                "pods_total": 2 * self.pods_per_contender()}


def namespaces(s):
    out = [{"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ROLLOUT_NS, "labels": {LABEL: "1"}}}]
    for e in range(s.envs):
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": s.env_ns(e),
                                 "labels": {LABEL: "1",
                                            "rollgate.io/allow-rollouts-from": ROLLOUT_NS}}})
    return out


def nodes(s, pods_per_node):
    """kwok fake nodes (managed through the annotation kwok.x-k8s.io/node=fake, see
    hack/cluster/nodes.yaml) with room for the benchmark's pods; the Deployments select them."""
    out = []
    for n in range(s.nodes):
        name = "bench-kwok-%d" % n
        alloc = {"cpu": "100k", "memory": "100Ti", "pods": str(pods_per_node),
                 "ephemeral-storage": "100Ti"}
        out.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name,
                         "annotations": {"kwok.x-k8s.io/node": "fake",
                                         "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"type": "kwok", NODE_LABEL: "true",
                                    "kubernetes.io/hostname": name,
                                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.129.0.%d" % (n + 1)},
                                     {"type": "Hostname", "address": name}],
                       "allocatable": alloc, "capacity": alloc}})
    return out


def deployment(s, contender, i, e, j):
    name = s.deploy_name(contender, i, j)
    labels = {LABEL: "1", CONTENDER_LABEL: contender, "app.kubernetes.io/name": name}
    annotations = {}
    if s.ready_delay:
        annotations["pod-ready.stage.kwok.x-k8s.io/delay"] = s.ready_delay
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": s.env_ns(e), "labels": labels},
        "spec": {
            "replicas": s.replicas(i, j),
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "nodeSelector": {NODE_LABEL: "true"},
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": CONTAINER,
                                    "image": NEW_IMAGE if s.on_images else OLD_IMAGE,
                                    "resources": {"requests": {"cpu": "1m",
                                                               "memory": "1Mi"}}}]}}}}


def all_deployments(s, contenders=("rollgate", "baseline")):
    for contender in contenders:
        for i in range(s.rollouts):
            for e in range(s.envs):
                for j in range(s.deployments):
                    yield deployment(s, contender, i, e, j)


def rollout(s, i):
    return {
        "apiVersion": "rollgate.io/v1alpha1", "kind": "ContainerRollout",
        "metadata": {"name": s.rollout_name(i), "namespace": ROLLOUT_NS, "labels": {LABEL: "1"}},
        "spec": {
            "images": {CONTAINER: NEW_IMAGE},
            "environments": [
                {"name": s.env_name(e), "namespace": ns,
                 "targets": [{"deployment": d, "containers": {CONTAINER: CONTAINER}}
                             for d in names]}
                for e, ns, names in s.targets("rollgate", i)],
            "progressDeadlineSeconds": 1800,
            "rollback": "None"}}


def baseline_plan_lines(s):
    """One line per rollout for baseline_rollout.sh: ID NS:D1,D2 NS:D1,D2 ... (in order)."""
    for i in range(s.rollouts):
        yield " ".join([s.rollout_name(i)] + ["%s:%s" % (ns, ",".join(names))
                                              for _, ns, names in s.targets("baseline", i)])
