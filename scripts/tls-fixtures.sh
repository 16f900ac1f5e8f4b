#!/usr/bin/env bash
# Regenerates the stores ferrokafka-tls's unit tests read (tls/tests/fixtures/) with
# openssl and keytool (Java 17): a CA, RSA and EC leaves, JKS/PKCS12/PEM stores,
# encrypted and traditional keys, certificates valid for 100 years. The unit tests
# never run the tools; commit the output.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v openssl >/dev/null || { echo "tls-fixtures: openssl is needed" >&2; exit 1; }
command -v keytool >/dev/null || [ -x /usr/bin/keytool ] || { echo "tls-fixtures: keytool (Java 17) is needed" >&2; exit 1; }
cargo run -q -p ferrokafka-tests --bin tls_fixtures -- tls/tests/fixtures
