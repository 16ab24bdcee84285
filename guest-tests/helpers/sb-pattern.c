// sb-pattern: the counter pattern sideband uses to check audio bit for bit.
//   sb-pattern SAMPLES          writes SAMPLES 16-bit little-endian samples counting 1, 2, 3, ...
//                               (wrapping at 65535 -> 0) to stdout; the backend checks what the
//                               headset recorded (backend/src/audio/counter.rs)
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
	if (argc != 2) {
		fprintf(stderr, "usage: sb-pattern SAMPLES | sb-pattern --check SAMPLES\n");
		return 2;
	}
	long total = atol(argv[1]);
	uint8_t buf[8192];
	uint16_t v = 1;
	while (total > 0) {
		long n = total < (long)(sizeof(buf) / 2) ? total : (long)(sizeof(buf) / 2);
		for (long i = 0; i < n; i++, v++) {
			buf[2 * i] = (uint8_t)(v & 0xff);
			buf[2 * i + 1] = (uint8_t)(v >> 8);
		}
		if (fwrite(buf, 2, (size_t)n, stdout) != (size_t)n)
			return 1;
		total -= n;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
