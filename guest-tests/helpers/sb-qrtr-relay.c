// sb-qrtr-relay: carries QRTR packets between the kernel's user-space QRTR endpoint
// (/dev/qrtr-tun: one read or write is one packet) and a virtio-serial port whose other end is
// the sideband backend's ADSP. On the byte-stream port each packet travels as a little-endian
// u32 length followed by the packet.
//
//   sb-qrtr-relay [PORT_NAME]      (default port name: sideband.qrtr)
//
// It exits when either side goes away (the backend hung up, or the tun failed); closing the
// tun unregisters the endpoint, so the guest sees the DSP node leave (a "DSP crash"). The init
// restarts it.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PACKET 65536

static int find_port(const char *name, char *path, size_t len)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	char file[512], buf[128];

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/sys/class/virtio-ports/%s/name", e->d_name);
		FILE *f = fopen(file, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = 0;
			if (strcmp(buf, name) == 0) {
				snprintf(path, len, "/dev/%s", e->d_name);
				fclose(f);
				closedir(d);
				return 0;
			}
		}
		fclose(f);
	}
	closedir(d);
	return -1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				poll(&pfd, 1, 1000);
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "sideband.qrtr";
	static uint8_t pkt[MAX_PACKET + 4], stream[2 * (MAX_PACKET + 4)];
	size_t have = 0;
	char port_path[300];

	if (find_port(name, port_path, sizeof(port_path)) < 0) {
		fprintf(stderr, "sb-qrtr-relay: no virtio-serial port named %s\n", name);
		return 1;
	}
	int port = open(port_path, O_RDWR | O_NONBLOCK);
	if (port < 0) {
		fprintf(stderr, "sb-qrtr-relay: open %s: %s\n", port_path, strerror(errno));
		return 1;
	}
	int tun = open("/dev/qrtr-tun", O_RDWR | O_NONBLOCK);
	if (tun < 0) {
		fprintf(stderr, "sb-qrtr-relay: open /dev/qrtr-tun: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "sb-qrtr-relay: relaying /dev/qrtr-tun <-> %s (%s)\n", port_path, name);

	for (;;) {
		struct pollfd fds[2] = { { .fd = tun, .events = POLLIN }, { .fd = port, .events = POLLIN } };
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("sb-qrtr-relay: poll");
			return 1;
		}
		if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			fprintf(stderr, "sb-qrtr-relay: /dev/qrtr-tun failed\n");
			return 1;
		}
		if (fds[1].revents & (POLLERR | POLLNVAL)) {
			fprintf(stderr, "sb-qrtr-relay: port %s failed\n", port_path);
			return 1;
		}
		if (fds[0].revents & POLLIN) {
			ssize_t n = read(tun, pkt + 4, MAX_PACKET);
			if (n > 0) {
				uint32_t len = (uint32_t)n;
				pkt[0] = len & 0xff;
				pkt[1] = (len >> 8) & 0xff;
				pkt[2] = (len >> 16) & 0xff;
				pkt[3] = (len >> 24) & 0xff;
				if (write_all(port, pkt, (size_t)n + 4) < 0) {
					fprintf(stderr, "sb-qrtr-relay: write to port: %s\n", strerror(errno));
					return 1;
				}
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(port, stream + have, sizeof(stream) - have);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				fprintf(stderr, "sb-qrtr-relay: backend hung up\n");
				return 1;
			}
			if (n < 0) {
				/* POLLHUP with nothing to read: the host side is not connected. */
				if (fds[1].revents & POLLHUP) {
					fprintf(stderr, "sb-qrtr-relay: backend hung up\n");
					return 1;
				}
				continue;
			}
			have += (size_t)n;
			while (have >= 4) {
				uint32_t len = stream[0] | stream[1] << 8 | stream[2] << 16 | (uint32_t)stream[3] << 24;
				if (len == 0 || len > MAX_PACKET) {
					fprintf(stderr, "sb-qrtr-relay: bad frame length %u from backend\n", len);
					return 1;
				}
				if (have < 4 + len)
					break;
				if (write(tun, stream + 4, len) < 0)
					fprintf(stderr, "sb-qrtr-relay: guest refused a %u-byte packet: %s\n", len,
						strerror(errno));
				memmove(stream, stream + 4 + len, have - 4 - len);
				have -= 4 + len;
			}
		}
	}
}
