/*
 * tap.h - a tiny TAP producer for the unit tests (read by prove).
 *   ok(cond, "name")        is(a, b, "name")        is_int(a, b, "name")
 *   done_testing()          returns the exit status
 */
#ifndef MS_TAP_H
#define MS_TAP_H

#include <stdio.h>
#include <stdarg.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is(a, b, ...) tap_is((a), (b), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(a, b, ...) tap_is_int((long long)(a), (long long)(b), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((unused, format(printf, 4, 5)))
static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

__attribute__((unused, format(printf, 5, 6)))
static int tap_is(const char *a, const char *b, const char *file, int line,
		  const char *fmt, ...)
{
	va_list ap;
	int cond = (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n#          got: '%s'\n#     expected: '%s'\n",
		       file, line, a ? a : "(null)", b ? b : "(null)");
	}
	fflush(stdout);
	return cond;
}

__attribute__((unused, format(printf, 5, 6)))
static int tap_is_int(long long a, long long b, const char *file, int line,
		      const char *fmt, ...)
{
	va_list ap;
	int cond = a == b;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n#          got: %lld\n#     expected: %lld\n",
		       file, line, a, b);
	}
	fflush(stdout);
	return cond;
}

__attribute__((unused))
static int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
