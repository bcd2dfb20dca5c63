# shellcheck shell=bash
# Sourced by hack/image.sh and hack/test-app-images.sh (the OCI image layers).
#
# reproducible_tar TAR DIR MEMBER...: DIR's MEMBERs in name order, every time SOURCE_DATE_EPOCH,
# owned by 0:0, no atime/ctime, so that the same files give the same bytes.
reproducible_tar() {
  local tar=$1 dir=$2
  shift 2
  tar --create --file "$tar" --directory "$dir" --sort=name --format=pax \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner "$@"
}
