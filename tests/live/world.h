/*
 * world.h - the mail world (tests/peers/world) for the live unit tests,
 * header-only like tap.h.
 *   world_load(dir)          read DIR/env (KEY='value' lines); -1 if none
 *   world_get("WORLD_...")   the value, NULL when the env lacks it
 *   world_str("WORLD_...")   the value, "" when the env lacks it
 *   world_port("WORLD_...")  the value as a port number, 0 when missing
 *   world_lmtp_deliver(rcpt, msg)
 *                            deliver msg (LF or CRLF lines) to rcpt through
 *                            Dovecot's LMTP port, as Postfix would; 0 on 250
 *   world_free()             forget what world_load() read
 */
#ifndef MS_TEST_WORLD_H
#define MS_TEST_WORLD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WORLD_MAXENV 256

static char *world_k[WORLD_MAXENV], *world_v[WORLD_MAXENV];
static int world_n;

__attribute__((unused))
static int world_load(const char *dir)
{
	char path[1024], line[2048];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", dir);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f) && world_n < WORLD_MAXENV) {
		char *eq, *v;
		size_t n;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || !(eq = strchr(line, '=')))
			continue;
		*eq = '\0';
		v = eq + 1;
		n = strlen(v);
		if (n >= 2 && v[0] == '\'' && v[n - 1] == '\'') {
			v[n - 1] = '\0';
			v++;
		}
		world_k[world_n] = strdup(line);
		world_v[world_n++] = strdup(v);
	}
	fclose(f);
	return 0;
}

__attribute__((unused))
static const char *world_get(const char *k)
{
	for (int i = 0; i < world_n; i++)
		if (strcmp(world_k[i], k) == 0)
			return world_v[i];
	return NULL;
}

__attribute__((unused))
static const char *world_str(const char *k)
{
	const char *v = world_get(k);

	return v ? v : "";
}

__attribute__((unused))
static int world_port(const char *k)
{
	const char *v = world_get(k);

	return v ? atoi(v) : 0;
}

__attribute__((unused))
static void world_free(void)
{
	for (int i = 0; i < world_n; i++) {
		free(world_k[i]);
		free(world_v[i]);
	}
	world_n = 0;
}

/* The reply's code (the last line of a multi-line reply); -1 on EOF. */
static int world_lmtp_reply(FILE *in, char *last, size_t lastsz)
{
	char line[1024];

	for (int i = 0; i < 100; i++) {
		if (!fgets(line, sizeof(line), in))
			return -1;
		snprintf(last, lastsz, "%s", line);
		if (strlen(line) < 4 || line[3] != '-')
			return atoi(line);
	}
	return -1;
}

__attribute__((unused))
static int world_lmtp_deliver(const char *rcpt, const char *msg)
{
	struct sockaddr_in sa;
	char last[1024];
	FILE *in = NULL, *out = NULL;
	int fd, fd2 = -1, code, ret = -1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)world_port("WORLD_LMTP_PORT"));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fd2 = dup(fd);
	in = fdopen(fd, "r");
	out = fd2 >= 0 ? fdopen(fd2, "w") : NULL;
	if (!in || !out)
		goto done;
	if (world_lmtp_reply(in, last, sizeof(last)) != 220)
		goto done;
	fprintf(out, "LHLO test.local\r\n");
	fflush(out);
	if (world_lmtp_reply(in, last, sizeof(last)) != 250)
		goto done;
	fprintf(out, "MAIL FROM:<sender@example.test>\r\n");
	fflush(out);
	if (world_lmtp_reply(in, last, sizeof(last)) != 250)
		goto done;
	fprintf(out, "RCPT TO:<%s>\r\n", rcpt);
	fflush(out);
	if (world_lmtp_reply(in, last, sizeof(last)) != 250)
		goto done;
	fprintf(out, "DATA\r\n");
	fflush(out);
	if (world_lmtp_reply(in, last, sizeof(last)) != 354)
		goto done;
	for (const char *p = msg; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n && p[n - 1] == '\r')
			n--;
		if (*p == '.')
			fputc('.', out);
		fwrite(p, 1, n, out);
		fputs("\r\n", out);
		p = nl ? nl + 1 : p + strlen(p);
	}
	fprintf(out, ".\r\n");
	fflush(out);
	code = world_lmtp_reply(in, last, sizeof(last));
	if (code != 250) {
		printf("# lmtp: %s", last);
		goto done;
	}
	fprintf(out, "QUIT\r\n");
	fflush(out);
	ret = 0;
done:
	if (in)
		fclose(in);
	else
		close(fd);
	if (out)
		fclose(out);
	else if (fd2 >= 0)
		close(fd2);
	return ret;
}

#endif
