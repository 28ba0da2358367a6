/* mailshift-migrate: placeholder until its issue lands. */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("mailshift-migrate %s\n", MS_VERSION);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		printf("usage: mailshift-migrate [options]\n");
		return 0;
	}
	fprintf(stderr, "mailshift-migrate: not implemented yet\n");
	return EX_SOFTWARE;
}
