#!/usr/bin/env bash
# The cluster phase of `make test`: the component image, the real single-node cluster,
# the tests marked `cluster` against them, then the cluster down again and checked clean.
#
# A cluster that was already up (someone's `make cluster`) is used and left up. Each step
# prints how long it took. SCALELAB_CLUSTER_TESTS=0 skips the phase, saying so.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
BIN=.venv/bin

if [ "${SCALELAB_CLUSTER_TESTS:-1}" = 0 ]; then
	echo "cluster tests: skipped (SCALELAB_CLUSTER_TESTS=0)"
	exit 0
fi

timed() { # timed LABEL COMMAND...: run, then print the label and the wall time
	local label=$1 started=$SECONDS rc=0
	shift
	"$@" || rc=$?
	echo "cluster tests: $label took $((SECONDS - started)) s (exit $rc)"
	return $rc
}

was_up=false
[ -f .cluster/kubeconfig ] && was_up=true
bring_down() {
	$was_up && return 0
	timed "make cluster-down" $MAKE --no-print-directory cluster-down || return 1
	timed "make cluster-check-clean" $MAKE --no-print-directory cluster-check-clean
}
image_build=""
kill_tree() { # kill_tree PID: a background build and everything it started
	local child
	for child in $(pgrep -P "$1"); do kill_tree "$child"; done
	kill -TERM "$1" 2>/dev/null
}
trap '[ -n "$image_build" ] && kill_tree "$image_build"; bring_down; exit 130' INT TERM

# The Debian packages first (apt allows one install at a time). Then the image and the
# cluster's binaries are built side by side, before any cluster competes for the CPU: on a
# fresh machine both are long Go builds, and debootstrap and module downloads mostly wait on
# the network, so each fills the cores the other leaves idle. The image is imported once
# the cluster runs.
timed "make cluster-deps" $MAKE --no-print-directory cluster-deps || exit 1
if $was_up; then
	timed "make image (build)" $MAKE --no-print-directory image || exit 1
else
	timed "make image (build)" $MAKE --no-print-directory image &
	image_build=$!
	timed "make cluster-build" $MAKE --no-print-directory cluster-build
	cluster_built=$?
	image_built=0
	wait "$image_build" || image_built=1
	image_build=""
	[ "$image_built" = 0 ] && [ "$cluster_built" = 0 ] || exit 1
	timed "make cluster (start)" $MAKE --no-print-directory cluster || { bring_down; exit 1; }
	timed "make image-import" $MAKE --no-print-directory image-import || { bring_down; exit 1; }
fi

rc=0
timed "pytest -m cluster" env SCALELAB_REQUIRE_CLUSTER=1 \
	$BIN/pytest -q -p no:cacheprovider -m cluster --durations=10 tests || rc=$?
bring_down || { [ "$rc" = 0 ] && rc=1; }
trap - INT TERM
exit "$rc"
