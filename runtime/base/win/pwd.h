/*
 * pwd.h - Windows has no user database of this shape.  paths.c asks it
 * only after the platform layer gave no machine-wide state folder, which
 * on Windows never happens (%PROGRAMDATA%\mailshift): a getpwuid() that
 * finds nobody keeps that code compiling.  Windows build only.
 */
#ifndef MS_WIN_PWD_H
#define MS_WIN_PWD_H

#include <stddef.h>

struct passwd {
	char *pw_name;
	char *pw_dir;
};

static inline struct passwd *getpwuid(int uid)
{
	(void)uid;
	return NULL;
}

#endif
