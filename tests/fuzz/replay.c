/*
 * Runs a fuzz target over its seed corpus without libFuzzer, so that every
 * `make check` (gcc or clang, with or without sanitizers) exercises the
 * target and the seeds. With arguments, replays those files instead (a
 * crash file from a fuzzing run, for instance).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *file = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t size = 0, alloc = 0, ret;

	if (file == NULL) {
		perror(path);
		return -1;
	}
	do {
		if (size == alloc) {
			alloc = alloc == 0 ? 4096 : alloc * 2;
			data = realloc(data, alloc);
			if (data == NULL)
				abort();
		}
		ret = fread(data + size, 1, alloc - size, file);
		size += ret;
	} while (ret > 0);
	fclose(file);
	(void)LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			if (replay_file(argv[i]) < 0)
				return 1;
			count++;
		}
		printf("%u passed, 0 failed\n", count);
		return 0;
	}

	DIR *dir = opendir(FUZZ_CORPUS_DIR);
	struct dirent *ent;
	char path[4096];

	if (dir == NULL) {
		perror(FUZZ_CORPUS_DIR);
		return 1;
	}
	while ((ent = readdir(dir)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", FUZZ_CORPUS_DIR, ent->d_name);
		if (replay_file(path) < 0) {
			closedir(dir);
			return 1;
		}
		count++;
	}
	closedir(dir);
	if (count == 0) {
		fprintf(stderr, "no seeds in %s\n", FUZZ_CORPUS_DIR);
		return 1;
	}
	printf("%u passed, 0 failed\n", count);
	return 0;
}
