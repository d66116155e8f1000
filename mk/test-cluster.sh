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
trap 'bring_down; exit 130' INT TERM

# The image first, while no cluster competes for the CPU; imported once the cluster runs.
timed "make image (build)" $MAKE --no-print-directory image || { bring_down; exit 1; }
if ! $was_up; then
	timed "make cluster (build and start)" $MAKE --no-print-directory cluster \
		|| { bring_down; exit 1; }
	timed "make image-import" $MAKE --no-print-directory image-import || { bring_down; exit 1; }
fi

rc=0
timed "pytest -m cluster" env SCALELAB_REQUIRE_CLUSTER=1 \
	$BIN/pytest -q -p no:cacheprovider -m cluster --durations=10 tests || rc=$?
bring_down || { [ "$rc" = 0 ] && rc=1; }
trap - INT TERM
exit "$rc"
