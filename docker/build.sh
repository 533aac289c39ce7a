#!/usr/bin/env bash
# Build mrseq images with podman, offline-capable:
#   docker/build.sh base         Debian bookworm rootfs (debootstrap) -> localhost/mrseq-base
#   docker/build.sh wheelhouse   every pinned wheel -> wheelhouse/ (the air-gapped path)
#   docker/build.sh serve|train  the image, from the base and the wheelhouse only
# No registry is needed: the base is built here. Podman runs with runc and explicit ulimits
# (crun and default ulimits fail on some cgroup layouts).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=localhost/mrseq-base:bookworm-2026.11
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY=${PYTHON:-.venv/bin/python}

base() {
  if "${PODMAN[@]}" image exists "$BASE"; then echo "$BASE exists"; return; fi
  local root
  root=$(mktemp -d)
  debootstrap --variant=minbase \
    --include=python3,python3-venv,openjdk-17-jre-headless,ca-certificates,procps \
    bookworm "$root" "$MIRROR"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE"
  rm -rf "$root"
}

wheelhouse() {
  mkdir -p wheelhouse
  # requirements.lock is a complete closure: --no-deps downloads exactly it. torch comes as
  # the CPU wheel (a plain resolve would pull the CUDA build and its nvidia-* wheels, GBs).
  "$PY" -m pip download --quiet --no-deps --dest wheelhouse "torch==2.13.0+cpu" setuptools wheel
  grep -v '^torch==' requirements.lock > wheelhouse/constraints.txt
  "$PY" -m pip download --quiet --no-deps --dest wheelhouse -r wheelhouse/constraints.txt
}

# Each build leaves its multi-GB build stage and the image it re-tags dangling; on a shared
# disk a few CI runs filled it ("no space left on device" in COPY), so builds check the space
# first and prune dangling images after.
MIN_FREE_GB=${MIN_FREE_GB:-8}

check_space() {
  local store free
  store=$("${PODMAN[@]}" info --format '{{.Store.GraphRoot}}')
  for dir in "$store" "${TMPDIR:-/var/tmp}"; do
    mkdir -p "$dir"
    free=$(df -Pk "$dir" | awk 'NR==2 {print int($4 / 1048576)}')
    if (( free < MIN_FREE_GB )); then
      echo "only ${free} GB free under $dir; an image build needs ${MIN_FREE_GB} GB" >&2
      exit 1
    fi
  done
}

image() {
  local name=$1
  "${PODMAN[@]}" image prune -f >/dev/null
  check_space
  "${PODMAN[@]}" build "${LIMITS[@]}" --build-arg BASE="$BASE" -f "docker/$name.Dockerfile" \
    -t "localhost/mrseq-$name:0.1.0" .
  "${PODMAN[@]}" image prune -f >/dev/null
}

case "${1:-}" in
  base) base ;;
  wheelhouse) wheelhouse ;;
  serve|train) image "$1" ;;
  all) base; wheelhouse; image serve; image train ;;
  *) echo "usage: $0 base|wheelhouse|serve|train|all" >&2; exit 2 ;;
esac
