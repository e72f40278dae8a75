#ifndef INPLACE_CARCHIVE_SHIM_H
#define INPLACE_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

/* Status codes are macros in archive.h; give Swift typed values. */
static inline int inplace_archive_ok(void) { return ARCHIVE_OK; }
static inline int inplace_archive_eof(void) { return ARCHIVE_EOF; }
static inline int inplace_archive_warn(void) { return ARCHIVE_WARN; }
static inline int inplace_archive_retry(void) { return ARCHIVE_RETRY; }
static inline int inplace_archive_failed(void) { return ARCHIVE_FAILED; }
static inline int inplace_archive_fatal(void) { return ARCHIVE_FATAL; }

/* File type bits are casting macros in archive_entry.h. */
static inline unsigned int inplace_ae_ifreg(void) { return AE_IFREG; }
static inline unsigned int inplace_ae_ifdir(void) { return AE_IFDIR; }
static inline unsigned int inplace_ae_iflnk(void) { return AE_IFLNK; }

/* archive_set_error is variadic (printf-style). */
static inline void inplace_archive_set_error(struct archive *a, int err, const char *message) {
    archive_set_error(a, err, "%s", message);
}

#endif
