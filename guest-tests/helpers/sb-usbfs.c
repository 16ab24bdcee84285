// sb-usbfs: issue the usbfs ioctls that no packaged tool issues, for fault scenarios.
//   sb-usbfs reset      /dev/bus/usb/BBB/DDD            USBDEVFS_RESET
//   sb-usbfs disconnect /dev/bus/usb/BBB/DDD INTERFACE  USBDEVFS_IOCTL(USBDEVFS_DISCONNECT)
//   sb-usbfs release    /dev/bus/usb/BBB/DDD INTERFACE  USBDEVFS_RELEASEINTERFACE
// Exit status 0 on success; the errno text otherwise.
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: sb-usbfs reset DEV | disconnect DEV IFACE | release DEV IFACE\n");
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
