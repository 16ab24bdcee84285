// sb-pattern: the counter pattern sideband uses to check audio bit for bit.
//   sb-pattern [--bytes N] SAMPLES  writes SAMPLES little-endian samples of N bytes (2, 3 or 4;
//                               default 2) counting 1, 2, 3, ... (wrapping at the width) to
//                               stdout; the backend checks what the headset recorded
//                               (backend/src/audio/counter.rs)
//   sb-pattern --check SAMPLES  reads 16-bit samples from stdin (what arecord captured from the
//                               headset's counter source) and checks that all SAMPLES of them
//                               count up by one without a break
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(long expected)
{
	uint8_t b[2];
	long n = 0;
	uint16_t prev = 0;
	while (fread(b, 1, 2, stdin) == 2) {
		uint16_t v = (uint16_t)(b[0] | b[1] << 8);
		if (n > 0 && v != (uint16_t)(prev + 1)) {
			printf("sb-pattern: break at sample %ld: %u follows %u\n", n, v, prev);
			return 1;
		}
		prev = v;
		n++;
	}
	if (n != expected) {
		printf("sb-pattern: %ld samples read, %ld expected\n", n, expected);
		return 1;
	}
	printf("sb-pattern: %ld samples count up without a break\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--check") == 0)
		return check(atol(argv[2]));
	int width = 2;
	if (argc == 4 && strcmp(argv[1], "--bytes") == 0) {
		width = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2 || width < 2 || width > 4) {
		fprintf(stderr, "usage: sb-pattern [--bytes 2|3|4] SAMPLES | sb-pattern --check SAMPLES\n");
		return 2;
	}
	long total = atol(argv[1]);
	uint8_t buf[12288];
	uint32_t v = 1;
	uint32_t mask = width == 4 ? 0xffffffffu : (1u << (8 * width)) - 1;
	long per = (long)sizeof(buf) / width;
	while (total > 0) {
		long n = total < per ? total : per;
		for (long i = 0; i < n; i++) {
			for (int b = 0; b < width; b++)
				buf[width * i + b] = (uint8_t)(v >> (8 * b));
			v = (v + 1) & mask;
		}
		if (fwrite(buf, (size_t)width, (size_t)n, stdout) != (size_t)n)
			return 1;
		total -= n;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
