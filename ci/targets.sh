# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this
# The named targets of the main job (ci/suite-in-image.sh) and the benchmark
# (ci/benchmark.sh): one place that says what each name means for
# ci/target-image.sh.
#
#   select_target NAME   exports FR1_FLAVOR and FR1_SUITE, sets TARGET_RUN
#                        (the extra `run` arguments: --boot for the booted
#                        targets); returns 1 for an unknown name.

TARGETS='cip-trixie cip-bookworm cip-bookworm-fixed tidied-bookworm tidied-trixie'

select_target() {
    case $1 in
        # CIP's own customisation, booted with systemd as on a device.
        cip-trixie) FR1_FLAVOR=cip FR1_SUITE=trixie TARGET_RUN=(--boot) ;;
        cip-bookworm) FR1_FLAVOR=cip FR1_SUITE=bookworm TARGET_RUN=(--boot) ;;
        # CIP's bookworm image with its remote-ban defects fixed the way a
        # product maker would (fixtures/cip-fixes).
        cip-bookworm-fixed) FR1_FLAVOR=cip-fixed FR1_SUITE=bookworm TARGET_RUN=(--boot) ;;
        # The project's tidied profile: namespaces on bookworm (the broken
        # profiles are written against it), booted on trixie.
        tidied-bookworm) FR1_FLAVOR=tidied FR1_SUITE=bookworm TARGET_RUN=() ;;
        tidied-trixie) FR1_FLAVOR=tidied FR1_SUITE=trixie TARGET_RUN=(--boot) ;;
        *) return 1 ;;
    esac
    export FR1_FLAVOR FR1_SUITE
}
