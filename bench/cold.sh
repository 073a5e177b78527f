# Sourced by bench scripts. cold FILE...: their pages out of the page cache
# (after a sync, so none is dirty), so that the next step reads them from
# disk, as a bundle or archive arriving on removable media is read.
cold() {
    sync
    python3 - "$@" <<'PY'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}
