/* test_mem.c - base/mem: wiping, growing arrays, the one out-of-memory error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "base/err.h"
#include "base/mem.h"

int main(void)
{
	struct ms_err err = MS_ERR_INIT;
	char buf[8] = "secret!";
	int *arr = NULL;
	size_t cap = 0, i;
	int bad = 0;

	mem_wipe(buf, sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		bad |= buf[i];
	ok(!bad, "mem_wipe zeroes every byte");
	mem_wipe(NULL, 5);
	mem_wipe_free(NULL);
	mem_wipe_free(strdup("token"));
	ok(1, "mem_wipe and mem_wipe_free take NULL");

	for (i = 0; i < 1000; i++) {
		if (MEM_GROW(arr, cap, i + 1, &err) < 0)
			break;
		arr[i] = (int)i;
	}
	ok(i == 1000 && cap >= 1000, "MEM_GROW grows to 1000 elements (cap %zu)", cap);
	ok(cap == 1024, "by doubling from 16 (cap %zu)", cap);
	ok(arr[999] == 999 && arr[0] == 0, "and keeps what was there");
	ok(MEM_GROW(arr, cap, 10, &err) == 0 && cap == 1024, "a smaller need does nothing");
	ok(MEM_GROW(arr, cap, SIZE_MAX / 2, &err) == -1, "an impossible size fails");
	is_int(err.code, MS_ERR_NOMEM, "with MS_ERR_NOMEM");
	is(err.msg, "out of memory", "and one message");
	ok(cap == 1024 && arr[999] == 999, "leaving the array as it was");
	free(arr);
	ok(err_nomem(NULL) == -1, "err_nomem(NULL) is -1");
	return done_testing();
}
