# Shared by the setup scripts (setup.sh, setup-vm.sh, setup-bench.sh): Debian package checks and
# installs. Source it after setting NAME (the calling script's name, for messages).
# Every function exits the script with status 1 and a reason on stderr when it cannot go on.

# installed PKG: true when dpkg has PKG installed.
installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# missing_packages PKG...: prints the ones not installed, each after a space ("" when none).
missing_packages() {
  out=""
  for p in "$@"; do
    installed "$p" || out="$out $p"
  done
  printf '%s' "$out"
}

# need_apt WHAT: sets SUDO ("" as root, else a sudo that does not prompt) and checks for apt-get;
# WHAT says what is missing, for the message.
need_apt() {
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "$NAME: $1 missing; run this script as root (no usable sudo)" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$NAME: $1 missing; apt-get not found (Debian 12 expected)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
}

# apt_update: apt-get update, tolerating a partial failure: one index (often i386 security) can
# be mid-sync and make it exit 100; what is needed is checked afterwards (apt_available).
apt_update() {
  echo "$NAME: apt-get update"
  if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
    echo "$NAME: apt-get update reported errors; checking whether the packages are available anyway"
  fi
}

# apt_available PKG...: every PKG can be installed from the configured sources.
apt_available() {
  for p in "$@"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "$NAME: package $p is not available from the configured apt sources" >&2
      exit 1
    fi
  done
}

# apt_install [--reinstall] PKG...: install quietly; on failure show apt's log.
apt_install() {
  echo "$NAME: apt-get install $*"
  log=$(mktemp)
  # shellcheck disable=SC2068
  if ! $SUDO apt-get install -y -q --no-install-recommends $@ >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$NAME: apt-get install $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}

# still_installed PKG...: after installing, every PKG is there.
still_installed() {
  for p in "$@"; do
    if ! installed "$p"; then
      echo "$NAME: $p is still not installed" >&2
      exit 1
    fi
  done
}
