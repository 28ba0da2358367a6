/*
 * platform.h - what differs between operating systems, in one place.
 *
 * The rest of the library is written against POSIX as Linux has it; the
 * calls here are the seam where another system (Windows agents) gets its
 * own implementation.  platform_posix.c is the one for Linux,
 * platform_win.c the one for 64-bit Windows; the Makefile picks one by
 * target (no module tests the system).  C library functions that Windows
 * merely lacks (strndup, memmem, ...) are not here: see compat_win.h.
 *
 * Calls that return -1 without an err record set errno, so the caller's
 * message stays its own ("cannot replace 'x': Permission denied").
 *
 * Random bytes are not here either: OpenSSL's RAND_bytes draws from the
 * system on both (getrandom on Linux, BCryptGenRandom on Windows).
 */
#ifndef MS_PLATFORM_H
#define MS_PLATFORM_H

#include <sys/stat.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Keep this process from ever writing a core dump or being attached to
 * by another user's debugger: a core of the connector or a tool would hold
 * the mailbox, OpCon and client secrets in clear.  Every program calls it
 * first.  Returns 0, or -1 when the system refused (the program goes on:
 * it is hardening, not a precondition).  Being every program's first
 * call, it also sets up what the rest assumes of the process: on Windows
 * binary mode for every file and the standard streams (no "\n" ->
 * "\r\n"), no error dialog boxes, a UTF-8 console; elsewhere the local
 * time zone named in TZ when it is unset, so that it is read once and not
 * again at every mktime(). */
int platform_no_core_dumps(void);

/* Make every file written on the file system that holds dir durable, with
 * their names (Linux: syncfs(2)): one call for many small files instead of
 * an fsync each.  0 when done, -1 with err on failure, 1 when this system
 * cannot (the caller then fsyncs each file and the directory). */
struct ms_err;
int platform_sync_fs(const char *dir, struct ms_err *err);

/* Make the names in dir durable (the renames and creations made there).
 * Linux: fsync of the directory.  Windows has no directory sync: NTFS
 * journals a rename made with MOVEFILE_WRITE_THROUGH (platform_replace,
 * platform_move_new) before the call returns, so this is a no-op there. */
int platform_fsync_dir(const char *dir, struct ms_err *err);

/* Rename from over to, atomically, whether or not to exists (readers see
 * the old file or the new one, never neither).  Windows' rename() fails
 * when to exists: there MoveFileExW(REPLACE_EXISTING | WRITE_THROUGH),
 * retried for up to a second while another process has to open without
 * FILE_SHARE_DELETE.  0, or -1 with errno. */
int platform_replace(const char *from, const char *to);

/* Move from to to only if to does not exist yet (atomic create-if-absent,
 * so that nobody ever sees a partial to).  0 when moved (from is gone),
 * -1 with errno EEXIST when to existed, -1 with another errno on failure
 * (from is then still there for the caller to remove). */
int platform_move_new(const char *from, const char *to);

/* Put the folder newdir in the place of the folder dir (fleet collection:
 * a machine's folder rebuilt beside it, then swapped in).  Afterwards
 * newdir's name holds what dir held (the caller removes it), or nothing
 * when dir did not exist.  Linux: one atomic renameat2(RENAME_EXCHANGE),
 * readers see the old folder or the new one; Windows (and file systems
 * without it): two renames, between which dir is briefly absent.  0, or
 * -1 with errno. */
int platform_swap_dir(const char *newdir, const char *dir);

/* This machine's name as OpCon knows the agent: %COMPUTERNAME% on
 * Windows (GetComputerName), the host name up to the first dot on POSIX.
 * 0, or -1 with errno. */
int platform_host_name(char *buf, size_t size);

/* The long form of an existing path that may hold 8.3 short names
 * ("C:\\PROGRA~1\\x.ini" -> "C:\\Program Files\\x.ini"), as the file
 * system itself knows them (Windows: GetLongPathName).  0 with *out
 * malloc'd; 1 when the system cannot tell (POSIX has no short names, or
 * the path does not exist); -1 with errno. */
int platform_long_path(const char *path, char **out);

/* A file's identity as "dev ino size mtime.ns ctime.ns" in buf: equal
 * identities mean no write and no rename over it in between (ctime moves
 * with either, and nobody can set it).  0, or -1 when this system gives
 * no such identity (Windows: stat has no nanoseconds and no ctime). */
int platform_file_id(const struct stat *st, char *buf, size_t sz);

/* What a folder listing says of an entry without a stat: its type where
 * the system gives it (Linux d_type), PLATFORM_ENT_UNKNOWN elsewhere
 * (Windows, some file systems): then stat it. */
enum platform_ent { PLATFORM_ENT_UNKNOWN, PLATFORM_ENT_DIR, PLATFORM_ENT_LINK,
		    PLATFORM_ENT_OTHER };
struct dirent;
enum platform_ent platform_dirent_type(const struct dirent *de);

/* mkdir(2) with mode (ignored on Windows, where the folder inherits its
 * parent's ACL).  0, or -1 with errno. */
int platform_mkdir(const char *path, mode_t mode);

/* Length of path's root: "/" on POSIX; "C:\", "C:", "\\server\share\"
 * or "\\" on Windows.  0 for a relative path. */
size_t platform_path_root_len(const char *path);

/* Is c a path separator ('/'; on Windows also '\')? */
int platform_is_sep(char c);

/* The last separator in path, or NULL. */
const char *platform_last_sep(const char *path);

/* Take an exclusive lock on the open file fd without waiting: 0, or -1
 * with errno EWOULDBLOCK when another process holds it (any other errno
 * is a failure).  The system releases it when the process dies, however
 * it dies.  Windows' locks are mandatory: lock a separate ".lock" file,
 * never data others must read. */
int platform_lock_try(int fd);
void platform_unlock(int fd);

/* May process pid, alive now, be the one that last wrote a file at
 * mtime?  0 only when it surely is not: no such process, or the process
 * that now has that PID started after mtime (the PID came round again:
 * Windows hands PIDs out again soon, Linux after pid_max, 32768 on
 * many machines), so a temporary file it names may go.  A process we may
 * not ask about, or whose start we cannot tell, is 1. */
int platform_pid_may_own(long pid, time_t mtime);

/* Ask the system to start reading the file at path into its cache
 * while the caller is busy with the ones before it (the fleet scan reads
 * exports one after the other; alone, a cold disk serves one file at a
 * time).  Linux: posix_fadvise(WILLNEED), which queues the reads and
 * returns.  The file's size in bytes, or -1 when it is not there or
 * nothing was asked (Windows has no such hint for a file not open). */
long long platform_prefetch(const char *path);

/* The permission bits of st that say who else may use the file (what
 * "readable by others" checks look at).  POSIX: st_mode & 0777.  Windows:
 * 0600, since st_mode there reflects only the read-only attribute, never
 * who may read: the file's ACL does (see docs/windows-port.md). */
unsigned platform_file_mode(const struct stat *st);

/* Do names on the file system differ by case alone (1: "a" and "A" are
 * two files)?  POSIX 1; Windows (and Wine) 0, where a lookup of "A"
 * succeeds for "a": a caller that wants the name as stored must list the
 * folder. */
int platform_names_case_sensitive(void);

/* Should TLS without a CA file trust the system's certificate store
 * (curl's CURLSSLOPT_NATIVE_CA)?  POSIX 0: OpenSSL finds the system's CA
 * bundle itself.  Windows 1: OpenSSL built for Windows has no bundle, and
 * the machine's trust lives in the Windows certificate store. */
int platform_tls_system_store(void);

/* The machine key at rest (auth/seal.c).  platform_key_store creates the
 * file path holding key (len bytes), atomically and only if it does not
 * exist (fs_create_exclusive: 1 when another process was first).  POSIX:
 * the bytes themselves, mode 0600.  Windows: a DPAPI blob bound to this
 * machine (CryptProtectData, CRYPTPROTECT_LOCAL_MACHINE), so a copy of the
 * file (a backup, a share) is useless elsewhere; it does not keep other
 * local users out (the folder's ACL must: docs/windows-port.md).
 * platform_key_read reads it back from the open fd into key, exactly len
 * bytes, with errors naming path; platform_key_file_size_ok says whether
 * a file of size bytes can hold such a key. */
int platform_key_store(const char *path, const unsigned char *key, size_t len,
		       struct ms_err *err);
int platform_key_read(int fd, const char *path, unsigned char *key, size_t len,
		      struct ms_err *err);
int platform_key_file_size_ok(long long size, size_t len);

/* The machine-wide state folder when this process should use one: 0 with
 * *dir set (malloc'd): /var/lib/mailshift for root on POSIX, and on
 * Windows %PROGRAMDATA%\mailshift always (batch users and services often
 * have no profile).  1 when the caller should use the per-user default.
 * -1 with err. */
int platform_machine_state_dir(char **dir, struct ms_err *err);

/* The INI file the connector reads when no -inifile: and no
 * MAILSHIFT_INIFILE name one, as a template for config_expand_env.
 * Windows: the incumbent's own default,
 * %PROGRAMDATA%\OpConxps\SMArt Email\SMArtEmail.ini, so that a job
 * whose command line names no INI keeps reading the file it read before
 * the cutover (migrate leaves such command lines without -inifile:).
 * POSIX: SMArtEmail.ini in the current folder. */
const char *platform_default_ini(void);

#endif
