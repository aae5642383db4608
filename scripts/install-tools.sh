#!/usr/bin/env bash
# Install the command-line tools the tests use that pip cannot provide. Idempotent.
#
# - docker-compose (Debian package, v1.29): validates docker-compose.yml with `config -q`, which needs no
#   Docker daemon. tests/unit/test_compose.py uses it.
# - faketime (libfaketime), qemu-user (qemu-x86_64, the dynamically linked build) and gcc:
#   scripts/test-clock-shift.sh runs the time-sensitive tests a year ahead with them (qemu-user so that
#   chdb's clock is shifted too; gcc builds its small preload, scripts/clock-shift/monotonic_waits.c).
#
# Never fails its caller (`make test` runs it): when a tool cannot be installed (no apt, not root, no
# network), it prints why and exits 0; the tests that need the tool then skip with a clear reason.
set -u

log() { printf 'install-tools: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# Run as root directly, or through passwordless sudo; print nothing and fail otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# Install one Debian package; refresh the package lists only when apt does not know the package yet.
apt_install() {
    local package="$1"
    if ! have apt-get; then
        log "apt-get not found: install '$package' with your package manager"
        return 1
    fi
    if ! apt-cache show "$package" >/dev/null 2>&1; then
        log "package lists do not know '$package': running apt-get update"
        as_root apt-get update -qq || { log "apt-get update failed (need root or sudo)"; return 1; }
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
        || { log "apt-get install $package failed (need root or sudo, or network)"; return 1; }
}

ensure_docker_compose() {
    if have docker-compose; then
        log "docker-compose present: $(docker-compose version --short 2>/dev/null || echo unknown)"
        return 0
    fi
    log "docker-compose missing: installing the Debian package"
    if apt_install docker-compose && have docker-compose; then
        log "installed docker-compose $(docker-compose version --short 2>/dev/null || echo unknown)"
    else
        log "docker-compose NOT installed: tests/unit/test_compose.py will skip its compose checks"
    fi
}

# Install Debian package "$2" unless command "$1" exists; "$3" says what is lost without it.
ensure_command() {
    local command="$1" package="$2" without="$3"
    if have "$command"; then
        log "$command present"
        return 0
    fi
    log "$command missing: installing the Debian package $package"
    if apt_install "$package" && have "$command"; then
        log "installed $package"
    else
        log "$package NOT installed: $without"
    fi
}

ensure_docker_compose
ensure_command faketime faketime "scripts/test-clock-shift.sh will fail"
ensure_command qemu-x86_64 qemu-user "scripts/test-clock-shift.sh will fail"
ensure_command gcc gcc "scripts/test-clock-shift.sh will fail"
exit 0
