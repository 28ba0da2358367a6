/*
 * fsync-copy.c - B4's physical baselines, for each path read from stdin
 * (one a line):
 *   fsync-copy       copy the file to PATH.bench-copy and fsync the copy
 *   fsync-copy -r    replace the file durably with its own bytes: write
 *                    PATH.bench-tmp, fsync it, rename it over PATH, fsync
 *                    the folder (what an atomic, durable rewrite costs)
 *   fsync-copy -R    the same, but each folder is fsynced once per batch of
 *                    256 files (after the renames), as a batched migrate
 *                    could do before committing the batch to its database
 * Compiled by bench/run at bench time.  Prints the number of files.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sync_dirs(char (*dirs)[4096], int *ndirs)
{
	for (int k = 0; k < *ndirs; k++) {
		int d = open(dirs[k], O_RDONLY | O_DIRECTORY);

		if (d < 0 || fsync(d) < 0) {
			perror(dirs[k]);
			return -1;
		}
		close(d);
	}
	*ndirs = 0;
	return 0;
}

int main(int argc, char **argv)
{
	int replace = argc > 1 && (strcmp(argv[1], "-r") == 0 ||
				   strcmp(argv[1], "-R") == 0);
	int batched = argc > 1 && strcmp(argv[1], "-R") == 0;
	static char dirs[256][4096];
	int ndirs = 0, inbatch = 0;
	static char data[1 << 20];
	char path[4096], copy[4200];
	long n = 0;

	while (fgets(path, sizeof(path), stdin)) {
		ssize_t len, w;
		int in, out;

		path[strcspn(path, "\n")] = '\0';
		if (!*path)
			continue;
		if ((in = open(path, O_RDONLY)) < 0) {
			perror(path);
			return 1;
		}
		len = read(in, data, sizeof(data));
		close(in);
		snprintf(copy, sizeof(copy), replace ? "%s.bench-tmp" : "%s.bench-copy", path);
		out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (len < 0 || out < 0 || (w = write(out, data, (size_t)len)) != len ||
		    fsync(out) < 0) {
			perror(copy);
			return 1;
		}
		close(out);
		if (replace) {
			char dir[4096];
			int d;

			if (rename(copy, path) < 0) {
				perror(path);
				return 1;
			}
			snprintf(dir, sizeof(dir), "%s", path);
			if (batched) {
				const char *dn = dirname(dir);
				int k;

				for (k = 0; k < ndirs; k++)
					if (strcmp(dirs[k], dn) == 0)
						break;
				if (k == ndirs)
					snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", dn);
				if (++inbatch == 256 && sync_dirs(dirs, &ndirs) < 0)
					return 1;
				if (inbatch == 256)
					inbatch = 0;
			} else {
				if ((d = open(dirname(dir), O_RDONLY | O_DIRECTORY)) < 0 ||
				    fsync(d) < 0) {
					perror(dir);
					return 1;
				}
				close(d);
			}
		}
		n++;
	}
	if (batched && sync_dirs(dirs, &ndirs) < 0)
		return 1;
	printf("%ld\n", n);
	return 0;
}
