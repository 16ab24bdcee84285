// sb-pattern SAMPLES: writes SAMPLES 16-bit little-endian samples counting 1, 2, 3, ...
// (wrapping at 65535 -> 0) to stdout: a signal whose every sample is predictable, so the
// backend can check the recording bit for bit (backend/src/audio/counter.rs).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sb-pattern SAMPLES\n");
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
