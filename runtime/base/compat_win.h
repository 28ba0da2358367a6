/*
 * compat_win.h - the POSIX and GNU C library functions the code uses that
 * Windows' C runtime (mingw-w64) lacks, in one place.
 *
 * Only the Windows build sees this header: mk/windows.mk passes
 * "-include base/compat_win.h" to every compile, so no module includes it and
 * no module carries an #ifdef.  These are missing library functions with
 * the same meaning on both systems; what differs in meaning between the
 * systems (replacing a file, locks, process ids, default folders,
 * durability) is not here but behind platform.h.
 *
 * Limits, on purpose:
 *   O_NOFOLLOW  0: Windows opens through a symbolic link or junction
 *               (a reparse point); the key file and token cache live in
 *               %PROGRAMDATA%\mailshift, which only administrators can
 *               give such links.
 *   lstat       is stat, and S_ISLNK is never true: an NTFS link is
 *               followed like a file (the audit's symlink note is a
 *               Linux-fleet finding).
 *   fchmod      succeeds and does nothing: NTFS has ACLs, not modes.
 *   geteuid     0, the owner mingw's stat() reports for every file, so the
 *               "owned by another user" checks compare like with like.
 *   open, fopen the C runtime's, wrapped at link time (mk/windows.mk) so
 *               that a name too long is ENAMETOOLONG, not ENOENT.
 */
#ifndef MS_COMPAT_WIN_H
#define MS_COMPAT_WIN_H

#include <fcntl.h>
#include <io.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC _O_NOINHERIT  /* not inherited by child processes */
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif
#ifndef S_ISLNK
#define S_ISLNK(m) 0
#endif
#define lstat stat

char *strndup(const char *s, size_t n);
void *memmem(const void *hay, size_t hlen, const void *needle, size_t nlen);
char *strcasestr(const char *hay, const char *needle);
/* glibc's argument order (the comparison gets arg last) */
void qsort_r(void *base, size_t n, size_t size,
	     int (*cmp)(const void *, const void *, void *), void *arg);
time_t timegm(struct tm *tm);
int fsync(int fd);
int fchmod(int fd, mode_t mode);
int geteuid(void);
/* errno E for a failed call on PATH, as Linux would set it: Windows' C
 * runtime says ENOENT for a name too long (a part past 255 characters, or
 * the whole past MAX_PATH where the machine does not allow long paths);
 * that becomes ENAMETOOLONG.  Any other errno is returned unchanged.
 * open() and fopen() apply it themselves (linked with --wrap). */
int ms_win_path_errno(const char *path, int e);

#endif
