#!/usr/bin/env bash
# Installs what the bridge's tests and quick start need from Debian, when missing:
# Orthanc with its DICOMweb plugin (the PACS), python3-pydicom and python3-nibabel (for their real sample files),
# and PostgreSQL's server binaries (the state store's tests start throwaway servers with initdb).
set -euo pipefail
need=()
[ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
[ -d /usr/lib/python3/dist-packages/pydicom/data/test_files ] || need+=(python3-pydicom)
[ -e /usr/lib/python3/dist-packages/nibabel/nicom/tests/data/0.dcm ] || need+=(python3-nibabel)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ "${WITH_CHROMIUM:-0}" = 1 ]; then command -v chromium >/dev/null || need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d (exit 101) keeps the packaged services (Orthanc, PostgreSQL's default cluster) from starting;
  # tests start their own instances. Docker images ship one; elsewhere one is put in place for the install only.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
