/*
 * platform_win.c - platform.h for 64-bit Windows (mingw-w64), built only
 * by the Windows build (mk/windows.mk) instead of platform_posix.c.
 *
 * Paths reach us as the C runtime's "ANSI" strings (argv, INI values); the
 * application manifest makes that code page UTF-8 on Windows 10 1903 and
 * later.  Calls that need the wide API convert with CP_ACP, so that they
 * read a path exactly as fopen() and open() in the rest of the code do.
 */
#include "base/platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include <dpapi.h>
#include <sddl.h>
#include <shlobj.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/fsutil.h"

/* How long platform_replace waits for another process (an editor, a
 * virus scanner, a backup agent) to let go of the target. */
#define REPLACE_RETRY_MS 1000
#define REPLACE_PAUSE_MS 50

int platform_no_core_dumps(void)
{
	/* No "program has stopped working" box and no Windows Error Reporting
	 * dump (it would hold secrets in clear, and a box nobody can click
	 * stalls an agent's job forever); no "insert a disk" box either. */
	SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX |
		     SEM_NOOPENFILEERRORBOX);
	/* Bytes in and out as written, for every file this process opens
	 * and the standard streams: events, reports and logs are the same
	 * bytes as on Linux, and text mode would turn connector.c's "\r\n"
	 * into "\r\r\n" and stop reading a key or a sealed value at a ^Z
	 * byte.  (mingw-w64's binmode.o is an empty stub: it does not.) */
	_fmode = _O_BINARY;
	_setmode(_fileno(stdout), _O_BINARY);
	_setmode(_fileno(stderr), _O_BINARY);
	_setmode(_fileno(stdin), _O_BINARY);
	/* our messages are UTF-8, as the manifest's active code page */
	SetConsoleOutputCP(CP_UTF8);
	return 0;
}

int platform_sync_fs(const char *dir, struct ms_err *err)
{
	(void)dir;
	(void)err;
	return 1;   /* no syncfs: the caller flushes each file */
}

int platform_fsync_dir(const char *dir, struct ms_err *err)
{
	/* Windows cannot open a folder for a flush and has no directory
	 * fsync; the renames were made with MOVEFILE_WRITE_THROUGH, which
	 * returns only once NTFS has journalled them. */
	(void)dir;
	(void)err;
	return 0;
}

static void set_errno_from(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE:
		errno = ENOENT; break;
	case ERROR_ALREADY_EXISTS:
	case ERROR_FILE_EXISTS:
		errno = EEXIST; break;
	case ERROR_ACCESS_DENIED:
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
		errno = EACCES; break;
	case ERROR_NOT_SAME_DEVICE:
		errno = EXDEV; break;
	case ERROR_FILENAME_EXCED_RANGE:
		errno = ENAMETOOLONG; break;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		errno = ENOSPC; break;
	case ERROR_WRITE_PROTECT:
		errno = EROFS; break;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		errno = ENOMEM; break;
	default:
		errno = EIO; break;
	}
}

/* path in the C runtime's code page -> a malloc'd wide string */
static wchar_t *wide(const char *path)
{
	int n = MultiByteToWideChar(CP_ACP, 0, path, -1, NULL, 0);
	wchar_t *w;

	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	if (!(w = malloc((size_t)n * sizeof(*w)))) {
		errno = ENOMEM;
		return NULL;
	}
	MultiByteToWideChar(CP_ACP, 0, path, -1, w, n);
	return w;
}

static int move(const char *from, const char *to, DWORD flags, int retry)
{
	wchar_t *wf = wide(from), *wt = wide(to);
	DWORD e = 0, waited = 0;
	int rc = -1;

	if (!wf || !wt)
		goto out;
	for (;;) {
		if (MoveFileExW(wf, wt, flags)) {
			rc = 0;
			goto out;
		}
		e = GetLastError();
		/* another process has the target open without FILE_SHARE_DELETE:
		 * it usually lets go within milliseconds */
		if (!retry || (e != ERROR_ACCESS_DENIED && e != ERROR_SHARING_VIOLATION) ||
		    waited >= REPLACE_RETRY_MS)
			break;
		Sleep(REPLACE_PAUSE_MS);
		waited += REPLACE_PAUSE_MS;
	}
	set_errno_from(e);
out:
	free(wf);
	free(wt);
	return rc;
}

int platform_replace(const char *from, const char *to)
{
	return move(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH, 1);
}

int platform_move_new(const char *from, const char *to)
{
	/* without REPLACE_EXISTING, MoveFileEx fails when to exists */
	return move(from, to, MOVEFILE_WRITE_THROUGH, 0);
}

int platform_swap_dir(const char *newdir, const char *dir)
{
	char *side;
	int rc;

	/* MoveFileEx cannot replace a folder: move the old one aside first */
	if (move(newdir, dir, MOVEFILE_WRITE_THROUGH, 0) == 0)
		return 0;
	if (asprintf(&side, "%s.swap", newdir) < 0)
		return -1;
	rc = move(dir, side, MOVEFILE_WRITE_THROUGH, 1) < 0 ||
	     move(newdir, dir, MOVEFILE_WRITE_THROUGH, 1) < 0 ||
	     move(side, newdir, MOVEFILE_WRITE_THROUGH, 1) < 0 ? -1 : 0;
	free(side);
	return rc;
}

int platform_long_path(const char *path, char **out)
{
	wchar_t *w = wide(path), *l = NULL;
	DWORD n;
	int m, rc = 1;

	*out = NULL;
	if (!w)
		return errno == ENOMEM ? -1 : 1;
	if ((n = GetLongPathNameW(w, NULL, 0)) == 0)
		goto out;           /* not there, or no such name */
	if (!(l = malloc((size_t)n * sizeof(*l)))) {
		rc = -1;
		goto out;
	}
	if (GetLongPathNameW(w, l, n) == 0 ||
	    (m = WideCharToMultiByte(CP_ACP, 0, l, -1, NULL, 0, NULL, NULL)) <= 0)
		goto out;
	if (!(*out = malloc((size_t)m))) {
		rc = -1;
		goto out;
	}
	WideCharToMultiByte(CP_ACP, 0, l, -1, *out, m, NULL, NULL);
	rc = 0;
out:
	free(w);
	free(l);
	if (rc < 0)
		errno = ENOMEM;
	return rc;
}

int platform_host_name(char *buf, size_t size)
{
	DWORD n = size > 0xffff ? 0xffff : (DWORD)size;

	if (!GetComputerNameA(buf, &n)) {
		set_errno_from(GetLastError());
		return -1;
	}
	return 0;
}

int platform_mkdir(const char *path, mode_t mode)
{
	int rc;

	(void)mode;   /* the new folder inherits its parent's ACL */
	if ((rc = mkdir(path)) < 0)
		errno = ms_win_path_errno(path, errno);   /* "too long", not "no such" */
	return rc;
}

static int is_sep(char c)
{
	return c == '/' || c == '\\';
}

size_t platform_path_root_len(const char *path)
{
	size_t i;
	int seps;

	if (is_sep(path[0]) && is_sep(path[1])) {
		/* \\server\share\ (or \\?\...): the root ends after the share */
		for (i = 2, seps = 0; path[i]; i++)
			if (is_sep(path[i]) && ++seps == 2)
				return i + 1;
		return i;
	}
	if (((path[0] | 0x20) >= 'a' && (path[0] | 0x20) <= 'z') && path[1] == ':')
		return is_sep(path[2]) ? 3 : 2;
	return is_sep(path[0]);
}

int platform_is_sep(char c)
{
	return is_sep(c);
}

const char *platform_last_sep(const char *path)
{
	const char *a = strrchr(path, '/'), *b = strrchr(path, '\\');

	return a > b ? a : b;
}

int platform_lock_try(int fd)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	OVERLAPPED o = { 0 };

	if (h == INVALID_HANDLE_VALUE) {
		errno = EBADF;
		return -1;
	}
	/* one byte far beyond the end: the lock files hold nothing anyway */
	o.Offset = 0xFFFFFFFE;
	o.OffsetHigh = 0x7FFFFFFF;
	if (LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0,
		       1, 0, &o))
		return 0;
	if (GetLastError() == ERROR_LOCK_VIOLATION || GetLastError() == ERROR_IO_PENDING)
		errno = EWOULDBLOCK;
	else
		set_errno_from(GetLastError());
	return -1;
}

void platform_unlock(int fd)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	OVERLAPPED o = { 0 };

	if (h == INVALID_HANDLE_VALUE)
		return;
	o.Offset = 0xFFFFFFFE;
	o.OffsetHigh = 0x7FFFFFFF;
	UnlockFileEx(h, 0, 1, 0, &o);
}

int platform_pid_may_own(long pid, time_t mtime)
{
	FILETIME created, exited, kernel, user;
	HANDLE h;
	DWORD code = 0;
	int alive;

	/* (long is 32 bits here: every positive one is a DWORD; the bound
	 * "pid > (long)0xFFFFFFFFu" this had was "pid > -1", every PID
	 * "dead", and the cleaners removed live writers' files) */
	if (pid <= 0)
		return 0;
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
	if (!h)
		return GetLastError() != ERROR_INVALID_PARAMETER;  /* = no such process */
	alive = !GetExitCodeProcess(h, &code) || code == STILL_ACTIVE;
	if (alive && GetProcessTimes(h, &created, &exited, &kernel, &user)) {
		/* 100 ns units since 1601 -> seconds since 1970; two seconds
		 * of slack, as on POSIX */
		ULONGLONG t = ((ULONGLONG)created.dwHighDateTime << 32) |
			      created.dwLowDateTime;
		long long started = (long long)(t / 10000000ULL) - 11644473600LL;

		alive = started <= (long long)mtime + 2;
	}
	CloseHandle(h);
	return alive;
}

unsigned platform_file_mode(const struct stat *st)
{
	(void)st;
	return 0600;
}

int platform_machine_state_dir(char **dir, struct ms_err *err)
{
	const char *pd = getenv("PROGRAMDATA");
	PWSTR known = NULL;
	char buf[MAX_PATH * 4];

	*dir = NULL;
	if (!pd || !*pd) {
		/* no such variable (a stripped environment): ask the shell */
		if (SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, NULL, &known) != S_OK ||
		    !WideCharToMultiByte(CP_ACP, 0, known, -1, buf, (int)sizeof(buf),
					 NULL, NULL)) {
			CoTaskMemFree(known);
			return err_set(err, MS_ERR_CONFIG,
				       "cannot find the ProgramData folder for the state "
				       "files; set MAILSHIFT_HOME");
		}
		CoTaskMemFree(known);
		pd = buf;
	}
	if (!(*dir = fs_join(pd, "mailshift")))
		return err_nomem(err);
	return 0;
}

const char *platform_default_ini(void)
{
	return "%PROGRAMDATA%\\OpConxps\\SMArt Email\\SMArtEmail.ini";
}

int platform_names_case_sensitive(void)
{
	return 0;
}

int platform_tls_system_store(void)
{
	return 1;
}

/* What DPAPI makes of 32 bytes is a few hundred; anything far bigger is
 * not our key file. */
#define KEY_BLOB_MAX 8192

/* The default state folder (%PROGRAMDATA%\mailshift) would inherit
 * ProgramData's ACL, under which every local user reads new files: give it
 * a protected DACL of its own, full control for SYSTEM, Administrators and
 * the current user, inherited by the files in it (the key, the token
 * cache) and applied to those already there.  Only that folder: one named
 * by MAILSHIFT_HOME or MAILSHIFT_KEY_FILE is the administrator's. */
static int restrict_state_dir(const char *key_path, struct ms_err *err)
{
	char *def = NULL, *dir = NULL;
	const char *sep = platform_last_sep(key_path);
	HANDLE tok = NULL;
	BYTE ubuf[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
	DWORD n = 0;
	LPWSTR sid = NULL;
	wchar_t sddl[256];
	wchar_t *wdir = NULL;
	PSECURITY_DESCRIPTOR sd = NULL;
	PACL dacl = NULL;
	BOOL present = FALSE, defaulted = FALSE;
	DWORD e;
	int rc = -1;

	if (!sep)
		return 0;
	if (platform_machine_state_dir(&def, err) < 0)
		return -1;
	if (!def)
		return 0;
	if (!(dir = strndup(key_path, (size_t)(sep - key_path)))) {
		free(def);
		return err_nomem(err);
	}
	if (_stricmp(dir, def) != 0) {
		rc = 0;
		goto out;
	}
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok) ||
	    !GetTokenInformation(tok, TokenUser, ubuf, sizeof(ubuf), &n) ||
	    !ConvertSidToStringSidW(((TOKEN_USER *)ubuf)->User.Sid, &sid)) {
		err_set(err, MS_ERR_INTERNAL, "cannot find the current user's account "
			"(error %lu)", (unsigned long)GetLastError());
		goto out;
	}
	_snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]),
		   L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;%ls)", sid);
	sddl[sizeof(sddl) / sizeof(sddl[0]) - 1] = L'\0';
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1,
								  &sd, NULL) ||
	    !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
		err_set(err, MS_ERR_INTERNAL, "cannot build an ACL for '%s' (error %lu)",
			dir, (unsigned long)GetLastError());
		goto out;
	}
	if (!(wdir = wide(dir))) {
		err_nomem(err);
		goto out;
	}
	e = SetNamedSecurityInfoW(wdir, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION |
				  PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL, dacl, NULL);
	if (e != ERROR_SUCCESS) {
		err_set(err, MS_ERR_IO, "cannot keep other users out of '%s' (error %lu): "
			"set its ACL to SYSTEM, Administrators and this account",
			dir, (unsigned long)e);
		goto out;
	}
	rc = 0;
out:
	if (tok)
		CloseHandle(tok);
	LocalFree(sid);
	LocalFree(sd);
	free(wdir);
	free(dir);
	free(def);
	return rc;
}

int platform_key_store(const char *path, const unsigned char *key, size_t len,
		       struct ms_err *err)
{
	DATA_BLOB in = { (DWORD)len, (BYTE *)key }, out = { 0, NULL };
	int rc;

	if (restrict_state_dir(path, err))
		return -1;

	if (!CryptProtectData(&in, L"mailshift machine key", NULL, NULL, NULL,
			      CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out))
		return err_set(err, MS_ERR_INTERNAL,
			       "cannot protect a new machine key with DPAPI (error %lu)",
			       (unsigned long)GetLastError());
	rc = fs_create_exclusive(path, out.pbData, out.cbData, 0600, err);
	LocalFree(out.pbData);
	return rc;
}

int platform_key_read(int fd, const char *path, unsigned char *key, size_t len,
		      struct ms_err *err)
{
	unsigned char *buf = malloc(KEY_BLOB_MAX);
	DATA_BLOB in, out = { 0, NULL };
	size_t got = 0;
	int rc = -1;

	if (!buf)
		return err_nomem(err);
	for (;;) {
		int n = _read(fd, buf + got, (unsigned)(KEY_BLOB_MAX - got));
		if (n < 0) {
			err_set(err, MS_ERR_IO, "cannot read key file '%s': %s", path,
				strerror(errno));
			goto out;
		}
		if (n == 0 || (got += (size_t)n) == KEY_BLOB_MAX)
			break;
	}
	in.cbData = (DWORD)got;
	in.pbData = buf;
	if (!CryptUnprotectData(&in, NULL, NULL, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &out)) {
		err_set(err, MS_ERR_CONFIG,
			"key file '%s' is damaged or was made on another machine (DPAPI "
			"error %lu); sealed values must be sealed again on this machine "
			"(--credentials)", path, (unsigned long)GetLastError());
		goto out;
	}
	if (out.cbData != len) {
		err_set(err, MS_ERR_CONFIG, "key file '%s' is damaged: a key of %lu bytes "
			"instead of %zu", path, (unsigned long)out.cbData, len);
		goto out;
	}
	memcpy(key, out.pbData, len);
	rc = 0;
out:
	if (out.pbData) {
		SecureZeroMemory(out.pbData, out.cbData);
		LocalFree(out.pbData);
	}
	free(buf);
	return rc;
}

int platform_key_file_size_ok(long long size, size_t len)
{
	(void)len;
	return size > 0 && size < KEY_BLOB_MAX;
}

int platform_file_id(const struct stat *st, char *buf, size_t sz)
{
	(void)st;
	(void)buf;
	(void)sz;
	return -1;
}

enum platform_ent platform_dirent_type(const struct dirent *de)
{
	(void)de;   /* mingw's dirent has no type: stat */
	return PLATFORM_ENT_UNKNOWN;
}

long long platform_prefetch(const char *path)
{
	(void)path;
	return -1;      /* no read-ahead hint for a file not open */
}
