#!/usr/bin/env bash
# Makes sure the Docker base image (default debian:trixie-slim) exists locally.
#
# Order of attempts: already present -> `docker pull` -> build it here: debootstrap a
# minbase rootfs of the tag's suite, trim it the way the official -slim image is trimmed, and
# `docker import` it under the same tag, so the real Dockerfile builds unchanged.
# The rootfs tarball is cached (HOWDAH_BASE_CACHE, default /var/cache/howdah), so a
# second run only re-imports it (a few seconds).
#
# Usage: tools/ensure-base-image.sh [TAG]     env: DEBIAN_MIRROR, HOWDAH_BASE_CACHE,
#                                                  HOWDAH_BASE_NO_PULL=1 (skip the pull)
set -euo pipefail

TAG=${1:-${BASE_IMAGE:-debian:trixie-slim}}
# The suite comes from the tag (debian:<suite>-slim).
SUITE=${TAG#*:}; SUITE=${SUITE%-slim}
case "$SUITE" in bookworm|trixie) ;; *) echo "ensure-base-image: $TAG is not debian:bookworm-slim or debian:trixie-slim" >&2; exit 2;; esac
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${HOWDAH_BASE_CACHE:-/var/cache/howdah}
# Bump the suffix when the trimming below changes, so caches are rebuilt.
TARBALL="$CACHE/rootfs-$SUITE-minbase-v2.tar"

log() { echo "ensure-base-image: $*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG present"
  exit 0
fi
if [ "${HOWDAH_BASE_NO_PULL:-0}" != 1 ] && timeout 60 docker pull -q "$TAG" >/dev/null 2>&1; then
  log "$TAG pulled"
  exit 0
fi

build_rootfs() {
  if ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing debootstrap from Debian (needed once to build the base image)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
        || { log "could not install debootstrap: run 'apt-get install debootstrap' as root"; exit 1; }
    else
      log "debootstrap is missing: run 'sudo apt-get install debootstrap' (or run this script as root)"; exit 1
    fi
  fi
  local root
  root=$(mktemp -d /tmp/howdah-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  log "debootstrap --variant=minbase $SUITE from $MIRROR (about 30-60 s)"
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $CACHE/debootstrap.log"; exit 1; }

  # Working apt sources: main, updates and security, in deb822 form like the official image.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Slim rules: no docs, man pages or translations from packages installed later;
  # apt keeps no downloaded .debs and fetches no translation indexes.
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
DPKG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
  # Policy: nothing starts services during image builds.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
         "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/log/*.log "$root"/tmp/* "$root"/dev/* 2>/dev/null || true
  : >"$root/etc/hostname"
  tar --numeric-owner -C "$root" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  log "cached rootfs $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

mkdir -p "$CACHE"
[ -s "$TARBALL" ] || build_rootfs
log "docker import $TARBALL as $TAG"
docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' "$TARBALL" "$TAG" >/dev/null
docker image inspect "$TAG" --format 'ensure-base-image: {{.RepoTags}} {{.Size}} bytes' >&2
