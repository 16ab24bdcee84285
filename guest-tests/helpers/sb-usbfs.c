// sb-usbfs: issue the usbfs ioctls that no packaged tool issues, for fault scenarios.
//   sb-usbfs reset      /dev/bus/usb/BBB/DDD            USBDEVFS_RESET
//   sb-usbfs disconnect /dev/bus/usb/BBB/DDD INTERFACE  USBDEVFS_IOCTL(USBDEVFS_DISCONNECT)
//   sb-usbfs release    /dev/bus/usb/BBB/DDD INTERFACE  USBDEVFS_RELEASEINTERFACE
//   sb-usbfs loopback   /dev/bus/usb/BBB/DDD BYTES      bulk OUT 0x01 then IN 0x81 on interface 0,
//                                                       16 KiB at a time, every byte compared
// Exit status 0 on success; the errno text (or the first differing offset) otherwise.
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CHUNK 16384

static int loopback(int fd, long total)
{
	static unsigned char out[CHUNK], in[CHUNK];
	unsigned int ifno = 0;
	long done = 0;

	if (ioctl(fd, USBDEVFS_CLAIMINTERFACE, &ifno) < 0) {
		fprintf(stderr, "sb-usbfs: claim interface 0: %s\n", strerror(errno));
		return 1;
	}
	while (done < total) {
		int n = total - done < CHUNK ? (int)(total - done) : CHUNK;
		for (int i = 0; i < n; i++)
			out[i] = (unsigned char)((done + i) * 7 + ((done + i) >> 11));
		struct usbdevfs_bulktransfer wr = { .ep = 0x01, .len = (unsigned int)n, .timeout = 5000, .data = out };
		int w = ioctl(fd, USBDEVFS_BULK, &wr);
		if (w != n) {
			fprintf(stderr, "sb-usbfs: bulk OUT at %ld: %d (%s)\n", done, w, strerror(errno));
			return 1;
		}
		int got = 0;
		while (got < n) {
			struct usbdevfs_bulktransfer rd = { .ep = 0x81, .len = (unsigned int)(n - got), .timeout = 5000, .data = in + got };
			int r = ioctl(fd, USBDEVFS_BULK, &rd);
			if (r <= 0) {
				fprintf(stderr, "sb-usbfs: bulk IN at %ld: %d (%s)\n", done + got, r, strerror(errno));
				return 1;
			}
			got += r;
		}
		if (memcmp(in, out, (size_t)n) != 0) {
			for (int i = 0; i < n; i++) {
				if (in[i] != out[i]) {
					fprintf(stderr, "sb-usbfs: byte %ld differs: sent %#x, got %#x\n", done + i, out[i], in[i]);
					break;
				}
			}
			return 1;
		}
		done += n;
	}
	printf("sb-usbfs: %ld bytes looped back and compared\n", done);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: sb-usbfs reset DEV | disconnect DEV IFACE | release DEV IFACE | loopback DEV BYTES\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *op = argv[1], *path = argv[2];
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "sb-usbfs: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc;
	if (strcmp(op, "reset") == 0) {
		rc = ioctl(fd, USBDEVFS_RESET, 0);
	} else if (strcmp(op, "disconnect") == 0 && argc == 4) {
		struct usbdevfs_ioctl cmd = {
			.ifno = atoi(argv[3]),
			.ioctl_code = USBDEVFS_DISCONNECT,
			.data = NULL,
		};
		rc = ioctl(fd, USBDEVFS_IOCTL, &cmd);
	} else if (strcmp(op, "loopback") == 0 && argc == 4) {
		rc = loopback(fd, atol(argv[3]));
		close(fd);
		return rc;
	} else if (strcmp(op, "release") == 0 && argc == 4) {
		unsigned int ifno = (unsigned int)atoi(argv[3]);
		rc = ioctl(fd, USBDEVFS_RELEASEINTERFACE, &ifno);
	} else {
		close(fd);
		return usage();
	}
	if (rc < 0) {
		fprintf(stderr, "sb-usbfs: %s %s: %s\n", op, path, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
