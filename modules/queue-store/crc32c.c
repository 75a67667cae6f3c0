/*
 * CRC-32C (Castagnoli), the checksum of queue and state files: it catches
 * torn writes and flipped bits, and it is cheap enough to check every file
 * at start. The SSE 4.2 instruction is used where the CPU has it, else
 * slicing-by-8 tables. Not a defence against anyone who can write the
 * queue directory: that person can write any message anyway.
 *
 * Conventions: crc32c_update(0, data, len) is the CRC of data, and
 * crc32c_update(crc32c_update(0, a, n), b, m) that of a followed by b.
 */
#include <pthread.h>
#include <string.h>

#include "queue_store.h"

#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t crc = i;

		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) != 0 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc_table[0][i] = crc;
	}
	for (uint32_t i = 0; i < 256; i++) {
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
	}
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t word;

		memcpy(&word, p, 8);
		word ^= crc; /* little-endian: the CRC meets the first four bytes */
		crc = crc_table[7][word & 0xff] ^ crc_table[6][(word >> 8) & 0xff] ^
		      crc_table[5][(word >> 16) & 0xff] ^ crc_table[4][(word >> 24) & 0xff] ^
		      crc_table[3][(word >> 32) & 0xff] ^ crc_table[2][(word >> 40) & 0xff] ^
		      crc_table[1][(word >> 48) & 0xff] ^ crc_table[0][word >> 56];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t crc64 = crc;

	while (len >= 8) {
		uint64_t word;

		memcpy(&word, p, 8);
		crc64 = __builtin_ia32_crc32di(crc64, word);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)crc64;
	while (len-- > 0)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_table_once, crc32c_init);
	crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
	if (crc_hw)
		return ~crc32c_hw(crc, data, len);
#endif
	return ~crc32c_sw(crc, data, len);
}

uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_table_once, crc32c_init);
	return ~crc32c_sw(~crc, data, len);
}
