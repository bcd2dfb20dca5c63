#!/usr/bin/env bash
# Checks the Prometheus alerting rules in manifests/alerts with promtool (Debian's `prometheus`
# package): `promtool check rules` (syntax, PromQL, templates) and `promtool test rules` (the unit
# tests in rollgate-alerts_test.yaml: every alert fires when it should and stays silent when it
# should not). Exits non-zero on any failure; exits 77 (ctest SKIP_RETURN_CODE) without promtool.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
alerts="${here}/../manifests/alerts"
promtool="${PROMTOOL:-$(command -v promtool || true)}"
if [[ -z "${promtool}" ]]; then
  echo "alerts_test: promtool not found (apt-get install prometheus, or set PROMTOOL)" >&2
  exit 77
fi

cd "${alerts}"
"${promtool}" check rules rollgate-alerts.yaml
"${promtool}" test rules rollgate-alerts_test.yaml
echo "alerts_test: OK"
