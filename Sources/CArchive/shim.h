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

#endif
