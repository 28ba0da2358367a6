/*
 * fsync-copy.c - B1's and B4's physical baselines, for each path read from
 * stdin (one a line):
 *   fsync-copy       copy the file to PATH.bench-copy and fsync the copy
 *   fsync-copy -r    replace the file durably with its own bytes: write
 *                    PATH.bench-tmp, fsync it, rename it over PATH, fsync
 *                    the folder (what an atomic, durable rewrite costs)
 *   fsync-copy -R    the same, but each folder is fsynced once per batch
 *                    (after the batch's renames), as migrate does before it
 *                    commits a batch to its database
 *   -b N             the batch of -R: N files (default 256)
 *   -j N             N files (and, with -R, folders) in flight at once, from
 *                    N threads: the baseline of a tool that writes N at once
 *                    is the same disk work with the same parallelism
 * Compiled by bench/run at bench time.  Prints the number of files.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_JOBS 64

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

/* Copy (or durably replace) one file; folder fsyncs by the caller when
 * batched.  data is the caller's buffer of size cap. */
static int one_file(const char *path, int replace, int batched, char *data, size_t cap)
{
	char copy[4200];
	ssize_t len, w;
	int in, out;

	if ((in = open(path, O_RDONLY)) < 0) {
		perror(path);
		return -1;
	}
	len = read(in, data, cap);
	close(in);
	snprintf(copy, sizeof(copy), replace ? "%s.bench-tmp" : "%s.bench-copy", path);
	out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (len < 0 || out < 0 || (w = write(out, data, (size_t)len)) != len ||
	    fsync(out) < 0) {
		perror(copy);
		return -1;
	}
	close(out);
	if (replace) {
		char dir[4096];
		int d;

		if (rename(copy, path) < 0) {
			perror(path);
			return -1;
		}
		if (batched)
			return 0;
		snprintf(dir, sizeof(dir), "%s", path);
		if ((d = open(dirname(dir), O_RDONLY | O_DIRECTORY)) < 0 || fsync(d) < 0) {
			perror(dir);
			return -1;
		}
		close(d);
	}
	return 0;
}

/* -j: the paths of a batch, taken one by one by the threads; with -R
 * then the batch's folders, the same way */
static char **paths, **dirs_p;
static size_t npaths, next_path, batch_end, ndirs_p, next_dir;
static int replace_mode, batched_mode, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
	char *data = malloc(1 << 20);

	(void)arg;
	if (!data)
		return NULL;
	for (;;) {
		size_t i;

		pthread_mutex_lock(&lock);
		i = next_path < batch_end ? next_path++ : batch_end;
		pthread_mutex_unlock(&lock);
		if (i >= batch_end || failed)
			break;
		if (one_file(paths[i], replace_mode, batched_mode, data, 1 << 20)) {
			failed = 1;
			break;
		}
	}
	free(data);
	return NULL;
}

static void *dir_worker(void *arg)
{
	(void)arg;
	for (;;) {
		size_t i;
		int d;

		pthread_mutex_lock(&lock);
		i = next_dir < ndirs_p ? next_dir++ : ndirs_p;
		pthread_mutex_unlock(&lock);
		if (i >= ndirs_p || failed)
			break;
		if ((d = open(dirs_p[i], O_RDONLY | O_DIRECTORY)) < 0 || fsync(d) < 0) {
			perror(dirs_p[i]);
			failed = 1;
			break;
		}
		close(d);
	}
	return NULL;
}

static int spawn(void *(*fn)(void *), int jobs)
{
	pthread_t t[MAX_JOBS];

	for (int k = 0; k < jobs; k++)
		if (pthread_create(&t[k], NULL, fn, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
	for (int k = 0; k < jobs; k++)
		pthread_join(t[k], NULL);
	return failed;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct folders of paths[lo, hi) into dirs_p. */
static int batch_dirs(size_t lo, size_t hi)
{
	size_t k, n = 0;

	for (k = 0; k < ndirs_p; k++)
		free(dirs_p[k]);
	ndirs_p = next_dir = 0;
	for (k = lo; k < hi; k++) {
		char *d = strdup(paths[k]);

		if (!d)
			return 1;
		dirs_p[n++] = strdup(dirname(d));
		free(d);
		if (!dirs_p[n - 1])
			return 1;
	}
	qsort(dirs_p, n, sizeof(*dirs_p), cmp_str);
	for (k = 0; k < n; k++) {
		if (ndirs_p && strcmp(dirs_p[ndirs_p - 1], dirs_p[k]) == 0)
			free(dirs_p[k]);
		else
			dirs_p[ndirs_p++] = dirs_p[k];
	}
	return 0;
}

static int run_parallel(int jobs, size_t batch)
{
	char line[4096];
	size_t cap = 0, lo;

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!*line)
			continue;
		if (npaths == cap) {
			cap = cap ? cap * 2 : 1024;
			if (!(paths = realloc(paths, cap * sizeof(*paths))))
				return 1;
		}
		if (!(paths[npaths++] = strdup(line)))
			return 1;
	}
	if (!batched_mode)
		batch = npaths ? npaths : 1;
	if (!(dirs_p = calloc(batch, sizeof(*dirs_p))))
		return 1;
	for (lo = 0; lo < npaths; lo += batch) {
		next_path = lo;
		batch_end = lo + batch < npaths ? lo + batch : npaths;
		if (spawn(worker, jobs))
			return 1;
		if (batched_mode && (batch_dirs(lo, batch_end) || spawn(dir_worker, jobs)))
			return 1;
	}
	printf("%zu\n", npaths);
	return 0;
}

int main(int argc, char **argv)
{
	static char dirs[256][4096];
	static char data[1 << 20];
	int ndirs = 0, inbatch = 0, replace = 0, batched = 0, jobs = 1, batch = 256;
	char path[4096];
	long n = 0;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "-r") == 0)
			replace = 1;
		else if (strcmp(argv[a], "-R") == 0)
			replace = batched = 1;
		else if (strcmp(argv[a], "-j") == 0 && a + 1 < argc)
			jobs = atoi(argv[++a]);
		else if (strcmp(argv[a], "-b") == 0 && a + 1 < argc)
			batch = atoi(argv[++a]);
		else {
			fprintf(stderr, "usage: fsync-copy [-r | -R [-b N]] [-j N] <paths\n");
			return 2;
		}
	}
	if (jobs < 1 || jobs > MAX_JOBS || batch < 1) {
		fprintf(stderr, "fsync-copy: -j takes 1 to %d, -b at least 1\n", MAX_JOBS);
		return 2;
	}
	if (jobs > 1 || batch != 256) {
		replace_mode = replace;
		batched_mode = batched;
		return run_parallel(jobs, (size_t)batch);
	}
	while (fgets(path, sizeof(path), stdin)) {
		path[strcspn(path, "\n")] = '\0';
		if (!*path)
			continue;
		if (one_file(path, replace, batched, data, sizeof(data)))
			return 1;
		if (batched) {
			char dir[4096];
			const char *dn;
			int k;

			snprintf(dir, sizeof(dir), "%s", path);
			dn = dirname(dir);
			for (k = 0; k < ndirs; k++)
				if (strcmp(dirs[k], dn) == 0)
					break;
			if (k == ndirs)
				snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", dn);
			if (++inbatch == 256) {
				if (sync_dirs(dirs, &ndirs) < 0)
					return 1;
				inbatch = 0;
			}
		}
		n++;
	}
	if (batched && sync_dirs(dirs, &ndirs) < 0)
		return 1;
	printf("%ld\n", n);
	return 0;
}
