#!/usr/bin/env bash
# Test-only tools from Debian's own packages, unpacked into .tools/ (gitignored).
#
# `apt-get download` + `dpkg -x` instead of `apt-get install`: no root needed, nothing lands in
# /usr, and no system service (prometheus.service, prometheus-alertmanager.service,
# nginx.service) is started. Tests start the binaries themselves on 127.0.0.1 with their own
# config (see conveyor/local/prometheus.py and alertmanager.py).
#
#   .tools/bin/prometheus, .tools/bin/promtool  <- Debian package `prometheus`
#   .tools/bin/alertmanager                     <- Debian package `prometheus-alertmanager`
#   .tools/bin/nginx                            <- Debian package `nginx` (or `nginx-core`)
#
# Idempotent: a tool whose .tools/bin link already runs is left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# apt's download sandbox user (_apt) must be able to write here, or apt warns and runs unsandboxed.
chmod 755 "$WORK"
mkdir -p "$BIN"

# download PKG: the .deb of PKG into $WORK/PKG/, printing its path.
download() {
    local pkg=$1 dir="$WORK/$1"
    mkdir -p "$dir"
    chmod 755 "$dir"
    if ! (cd "$dir" && apt-get download -qq "$pkg" >"$dir/apt.log" 2>&1); then
        if [ "$(id -u)" -eq 0 ]; then
            # Usually a stale or empty package list (fresh container): refresh once and retry.
            apt-get update -qq >&2
            if (cd "$dir" && apt-get download -qq "$pkg" >"$dir/apt.log" 2>&1); then
                :
            else
                cat "$dir/apt.log" >&2
                echo "fetch-tools: 'apt-get download $pkg' failed even after 'apt-get update'." >&2
                return 1
            fi
        else
            cat "$dir/apt.log" >&2
            echo "fetch-tools: 'apt-get download $pkg' failed. The package lists may be stale:" \
                "run 'sudo apt-get update' once, then 'make tools' again." >&2
            return 1
        fi
    fi
    local deb
    deb="$(ls "$dir"/"${pkg}"_*.deb)"
    echo "$deb"
}

# unpack DEB DEST: extract DEB's files (not its scripts) under DEST, recording its version.
unpack() {
    local deb=$1 dest=$2
    dpkg -x "$deb" "$dest"
    printf '%s %s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" \
        >>"$dest/.debian-packages"
}

# link NAME TARGET: .tools/bin/NAME -> TARGET (relative to .tools/, so the tree can move).
link() {
    ln -sfn "../$2" "$BIN/$1"
}

installed=()

# --- Prometheus -------------------------------------------------------------------------------
if [ -x "$BIN/prometheus" ] && "$BIN/prometheus" --version >/dev/null 2>&1; then
    echo "fetch-tools: prometheus already in .tools/bin"
else
    deb="$(download prometheus)"
    rm -rf "$TOOLS/prometheus-pkg"
    unpack "$deb" "$TOOLS/prometheus-pkg"
    link prometheus prometheus-pkg/usr/bin/prometheus
    link promtool prometheus-pkg/usr/bin/promtool
    installed+=(prometheus promtool)
fi

# --- Alertmanager -----------------------------------------------------------------------------
# Debian names the binary prometheus-alertmanager; the link drops the prefix (amtool is unused).
#
# Debian's build reads its default notification templates at run time from the absolute path
# /usr/share/prometheus/alertmanager (upstream embeds them), and without them the config fails
# to load and the binary exits. dpkg -x puts them under .tools/ instead, so the unpacked binary
# gets that one path constant rewritten, same length, to a path relative to its working
# directory, where conveyor/local/alertmanager.py links the unpacked templates.
AM_SHARE=/usr/share/prometheus/alertmanager
AM_TEMPLATES=./.conveyor-alertmanager-templates
if [ -x "$BIN/alertmanager" ] && "$BIN/alertmanager" --version >/dev/null 2>&1 \
    && grep -qaF "$AM_TEMPLATES" "$BIN/alertmanager"; then
    echo "fetch-tools: alertmanager already in .tools/bin"
else
    deb="$(download prometheus-alertmanager)"
    rm -rf "$TOOLS/alertmanager-pkg"
    unpack "$deb" "$TOOLS/alertmanager-pkg"
    # Exactly one match: the constant itself; the UI paths (…/ui/, …/no-ui) start with it too,
    # hence the lookahead. Written to a copy first, so a failed patch leaves no half file.
    am="$TOOLS/alertmanager-pkg/usr/bin/prometheus-alertmanager"
    perl -e '
        my ($file, $old, $new) = @ARGV;
        length($old) == length($new) or die "fetch-tools: $new is not as long as $old\n";
        open(my $in, "<:raw", $file) or die "$file: $!\n";
        my $bin = do { local $/; <$in> };
        my $n = () = $bin =~ m{\Q$old\E(?!/)}g;
        $n == 1 or die "fetch-tools: $n copies of $old in $file, expected 1: not patching\n";
        $bin =~ s{\Q$old\E(?!/)}{$new};
        open(my $out, ">:raw", "$file.patched") or die "$file.patched: $!\n";
        print {$out} $bin or die "$file.patched: $!\n";
        close($out) or die "$file.patched: $!\n";
    ' "$am" "$AM_SHARE" "$AM_TEMPLATES"
    chmod 755 "$am.patched"
    mv "$am.patched" "$am"
    link alertmanager alertmanager-pkg/usr/bin/prometheus-alertmanager
    installed+=(alertmanager)
fi

# --- nginx ------------------------------------------------------------------------------------
# On bookworm the binary is in `nginx` (1.22.1-6 moved it out of nginx-core, now a metapackage
# of dynamic modules); older releases ship it in `nginx-core`. Check the .deb, not the release.
if [ -x "$BIN/nginx" ] && "$BIN/nginx" -V >/dev/null 2>&1; then
    echo "fetch-tools: nginx already in .tools/bin"
else
    deb="$(download nginx)"
    rm -rf "$TOOLS/nginx-pkg"
    unpack "$deb" "$TOOLS/nginx-pkg"
    # The listing goes to a file: `dpkg -c | grep -q` would end dpkg with SIGPIPE (pipefail).
    dpkg -c "$deb" >"$WORK/nginx.contents"
    if ! grep -q ' \./usr/sbin/nginx$' "$WORK/nginx.contents"; then
        unpack "$(download nginx-core)" "$TOOLS/nginx-pkg"
    fi
    if [ ! -f "$TOOLS/nginx-pkg/usr/sbin/nginx" ]; then
        echo "fetch-tools: neither 'nginx' nor 'nginx-core' contains usr/sbin/nginx." >&2
        exit 1
    fi
    link nginx nginx-pkg/usr/sbin/nginx
    installed+=(nginx)
fi

# --- verify -----------------------------------------------------------------------------------
# Debian's binaries link against the system's shared libraries; dpkg -x installs none of their
# dependencies, so a missing one shows up here and not later inside a test.
check() {
    local name=$1
    shift
    if ! "$BIN/$name" "$@" >/dev/null 2>&1; then
        echo "fetch-tools: .tools/bin/$name does not run:" >&2
        "$BIN/$name" "$@" 2>&1 | tail -n 5 >&2 || true
        local missing
        missing="$(ldd "$(readlink -f "$BIN/$name")" 2>/dev/null | awk '/not found/ {print $1}')"
        if [ -n "$missing" ]; then
            echo "fetch-tools: missing shared libraries: $(echo "$missing" | tr '\n' ' ')" >&2
            echo "fetch-tools: install the Debian packages that provide them" \
                "(apt-get install ...)." >&2
        fi
        exit 1
    fi
}
check prometheus --version
check promtool --version
check alertmanager --version
check nginx -V

if [ ${#installed[@]} -gt 0 ]; then
    echo "fetch-tools: installed into .tools/bin: ${installed[*]}"
fi
for pkg in prometheus alertmanager nginx; do
    echo "  $pkg-pkg: $(paste -sd ' ' "$TOOLS/$pkg-pkg/.debian-packages")"
done
echo "  $("$BIN/prometheus" --version 2>&1 | head -n 1)"
echo "  $("$BIN/alertmanager" --version 2>&1 | head -n 1)"
echo "  $("$BIN/nginx" -v 2>&1 | head -n 1)"
