# Shared helpers for the setup scripts. Source it; do not run it.
# Every heavy output lives under $SIDEBAND_CACHE (default ~/.cache/sideband),
# keyed by a hash of its inputs, so a second run reuses it.
set -euo pipefail

SIDEBAND_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIDEBAND_CACHE="${SIDEBAND_CACHE:-$HOME/.cache/sideband}"
mkdir -p "$SIDEBAND_CACHE"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
DEBIAN_MIRROR="${SIDEBAND_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY="${SIDEBAND_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"

say() { printf '[sideband] %s\n' "$*" >&2; }
die() { printf '[sideband] error: %s\n' "$*" >&2; exit 1; }

# Hash of files and strings: `inputs_key FILE... -- STRING...` prints 16 hex digits.
inputs_key() {
    local files=() strings=() seen_sep=0
    for a in "$@"; do
        if [ "$a" = "--" ]; then seen_sep=1; continue; fi
        if [ $seen_sep = 0 ]; then files+=("$a"); else strings+=("$a"); fi
    done
    {
        for f in "${files[@]}"; do
            if [ -d "$f" ]; then
                (cd "$f" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
            else
                printf '%s ' "$(basename "$f")"; sha256sum < "$f"
            fi
        done
        printf '%s\n' "${strings[@]}"
    } | sha256sum | cut -c1-16
}

# What a kernel output folder holds, for run summaries: `write_identity OUT SOURCE_TREE DESCRIPTION`
# writes OUT/identity: a hash of the Image and the installed modules, and where they came from (for
# a git tree its commit, "-dirty" when tracked files differ from it).
write_identity() {
    local out=$1 src=$2 what=$3 git=""
    if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git="git $(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo none)"
        [ -z "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null | head -1)" ] || git="$git-dirty"
    fi
    echo "Image+modules $(inputs_key "$out/Image" "$out/modules"), ${what}${git:+, $git}" > "$out/identity"
}

# Private apt configuration that ignores the host's apt state: `private_apt NAME ARCH SUITE...`
# sets APT_CONFIG for the caller. Suites are Debian suite names (trixie, trixie-backports, sid, bookworm).
private_apt() {
    local name=$1 arch=$2; shift 2
    local A="$SIDEBAND_CACHE/apt/$name"
    mkdir -p "$A/etc/apt.conf.d" "$A/etc/empty.d" "$A/state/lists/partial" "$A/cache/archives/partial"
    : > "$A/state/status"
    : > "$A/etc/sources.list"
    for s in "$@"; do
        case $s in
            *-security) echo "deb [signed-by=$KEYRING] $DEBIAN_SECURITY $s main" ;;
            *) echo "deb [signed-by=$KEYRING] $DEBIAN_MIRROR $s main" ;;
        esac >> "$A/etc/sources.list"
    done
    cat > "$A/apt.conf" <<CONF
Dir::Etc::main "/dev/null";  Dir::Etc::parts "$A/etc/apt.conf.d";
Dir::Etc::sourcelist "$A/etc/sources.list";  Dir::Etc::sourceparts "$A/etc/empty.d";
Dir::Etc::preferences "/dev/null";  Dir::Etc::preferencesparts "$A/etc/empty.d";
Dir::State "$A/state";  Dir::State::status "$A/state/status";  Dir::Cache "$A/cache";
APT::Architecture "$arch";  APT::Architectures { "$arch"; };  APT::Sandbox::User "root";
Acquire::Languages "none";  Acquire::GzipIndexes "true";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::Retries "3";  Acquire::Check-Valid-Until "false";
CONF
    export APT_CONFIG="$A/apt.conf"
    # Index files older than a day are refreshed; otherwise reuse them.
    if [ -z "$(find "$A/state/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
        say "apt: updating package lists for $name ($*)"
        apt-get -q -o APT::Update::Error-Mode=any update >"$A/update.log" 2>&1 \
            || { cat "$A/update.log" >&2; die "apt-get update failed for $name"; }
    fi
}

# Newest version of PACKAGE visible through the current APT_CONFIG, or empty.
apt_candidate() {
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)' || true
}

# Download packages into DIR with a size line; `apt_download DIR PKG...`.
apt_download() {
    local dir=$1; shift
    mkdir -p "$dir"
    local bytes
    bytes=$(apt-cache show --no-all-versions "$@" 2>/dev/null | awk '/^Size:/ {s+=$2} END {print s+0}')
    say "apt: downloading $# package(s), $((bytes / 1024 / 1024)) MiB"
    (cd "$dir" && apt-get -q download "$@" >"$dir/download.log" 2>&1) \
        || { cat "$dir/download.log" >&2; die "apt-get download failed: $*"; }
}

# Host (bookworm) packages the build needs. Installs them when root, else prints the command.
require_host_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        die "missing host packages; run as root: apt-get update && apt-get install -y ${missing[*]}"
    fi
    say "installing host packages: ${missing[*]}"
    (apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}") \
        >"$SIDEBAND_CACHE/host-packages.log" 2>&1 \
        || { tail -20 "$SIDEBAND_CACHE/host-packages.log" >&2; die "apt-get install failed: ${missing[*]}"; }
}

HOST_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross device-tree-compiler flex bison bc libssl-dev
    libelf-dev cpio kmod xz-utils make python3 dpkg-dev)
