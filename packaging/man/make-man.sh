#!/bin/sh
# Writes cowherd(8), cowctl(1) and cowherd.yaml(5), gzipped, into OUTDIR. The two commands'
# pages are made by help2man from their own --help (cowctl's with every verb's --help), so they
# cannot disagree with it; cowherd.yaml(5) is the config reference, config/README.md, through
# pandoc. What --help cannot say (exit status, signals, files) comes from the .h2m files here.
set -eu
[ $# -eq 4 ] || { echo "usage: $0 BINDIR SRCDIR OUTDIR VERSION" >&2; exit 2; }
bindir=$1 src=$2 out=$3 version=$4
mkdir -p "$out"
# Run by name, so that the usage lines say "cowherd", not the build directory.
PATH="$bindir:$PATH"
export PATH

verbs=$(cowctl --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$verbs" ] || { echo "$0: cowctl --help lists no verbs" >&2; exit 1; }
{
    echo "[VERBS]"
    for v in $verbs; do
        echo ".SS $v"
        echo ".nf"
        # Backslashes and leading dots are roff syntax; the help text means them literally.
        cowctl "$v" --help | sed -e 's/\\/\\e/g' -e 's/^\([.'\'']\)/\\\&\1/'
        echo ".fi"
    done
} >"$out/cowctl-verbs.h2m"

help2man --no-info --section=8 --version-string="$version" \
    --name="a process supervisor for pools of workers" \
    --include="$src/packaging/man/cowherd.h2m" --output="$out/cowherd.8" cowherd
help2man --no-info --section=1 --version-string="$version" --name="control a running cowherd" \
    --include="$out/cowctl-verbs.h2m" --include="$src/packaging/man/cowctl.h2m" \
    --output="$out/cowctl.1" cowctl
# The reference's title becomes the page's NAME line; its sections stay sections.
pandoc --standalone --from=gfm --to=man --shift-heading-level-by=-1 \
    --metadata=title:cowherd.yaml --metadata=section:5 \
    --metadata=header:"File formats" --metadata=footer:"cowherd $version" \
    --output="$out/cowherd.yaml.5" "$src/config/README.md"

for page in cowherd.8 cowctl.1 cowherd.yaml.5; do
    gzip -9nf "$out/$page"
done
