/*
 * Queue ids: 16 upper-case hex digits, 8 of the arrival second, 5 of its
 * microseconds and 3 random, so ids sort by arrival (in listings and in
 * the directory), are safe as file names and in Message-IDs, and do not
 * repeat after a restart. The caller still checks the id against the
 * messages it has (a clock set back could meet an old one).
 */
#include <stdio.h>
#include <string.h>

#include "queue_store.h"

void qid_generate(uint64_t wall_us, uint32_t random, char id_r[QID_SIZE])
{
	uint64_t secs = wall_us / 1000000u;
	uint64_t usecs = wall_us % 1000000u;

	snprintf(id_r, QID_SIZE, "%08X%05X%03X", (unsigned)(secs & 0xffffffffu),
		 (unsigned)usecs, (unsigned)(random & 0xfffu));
}

bool qid_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F')))
			return false;
	}
	return i == QID_LEN;
}
