/*
 * SSH agent forwarding into a container (users' auth.agentForwarding). The hand-off helper
 * (root) makes a listening socket at /tmp/NAME/agent.sock inside the container, in a directory
 * only the container user can enter; the login client accepts on it and relays each connection
 * to its own $SSH_AUTH_SOCK, as the user it runs as. Neither the daemon nor root ever connects
 * to a path a client named.
 *
 * The container's files are reached through /proc/PID/root, where a symlink the container made
 * would resolve on the host: every step is relative to a directory opened with O_NOFOLLOW, and
 * the directory is handed to the container user only once the socket in it is in place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define RELAY_CHUNK 16384

static int valid_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n < 13 || n > 64 || strncmp(name, "skiff-agent-", 12) != 0)
		return 0;
	for (i = 12; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return 0;
	return 1;
}

const char *agent_listen(long pid, long uid, long gid, const char *name, int *out)
{
	char path[64];
	struct sockaddr_un addr;
	int tmp, dir, sock;
	const char *error = NULL;

	*out = -1;
	if (pid <= 0 || uid < 0 || gid < 0 || !valid_name(name))
		return "bad agent request";
	snprintf(path, sizeof(path), "/proc/%ld/root/tmp", pid);
	tmp = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tmp < 0) {
		static char why[128];

		snprintf(why, sizeof(why), "cannot open /tmp in the container (%s)", strerror(errno));
		return why;
	}
	if (mkdirat(tmp, name, 0700) < 0) {
		close(tmp);
		return "cannot make the agent directory in the container's /tmp";
	}
	dir = openat(tmp, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/agent.sock", dir);
	if (dir < 0 || sock < 0)
		error = "cannot open the agent directory";
	else if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(sock, 16) < 0)
		error = "cannot listen in the agent directory";
	/* Still root's directory: nobody can have swapped the socket for a link yet. */
	else if (fchownat(dir, "agent.sock", (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0 ||
		 fchmodat(dir, "agent.sock", 0600, 0) < 0 || fchown(dir, (uid_t)uid, (gid_t)gid) < 0)
		error = "cannot give the agent socket to the container user";
	if (error) {
		if (dir >= 0) {
			unlinkat(dir, "agent.sock", 0);
			close(dir);
		}
		unlinkat(tmp, name, AT_REMOVEDIR);
		close(tmp);
		if (sock >= 0)
			close(sock);
		return error;
	}
	close(dir);
	close(tmp);
	*out = sock;
	return NULL;
}

/* Copies what is readable on `from` to `to`; 0 at EOF or error. */
static int pump(int from, int to)
{
	char data[RELAY_CHUNK];
	ssize_t n = read(from, data, sizeof(data));
	ssize_t off = 0;

	if (n <= 0)
		return n < 0 && errno == EINTR;
	while (off < n) {
		ssize_t w = write(to, data + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		off += w;
	}
	return 1;
}

/* The child that serves one connection: it owns nothing of the session but `conn`. */
static void relay_child(int conn, const char *agent_path, pid_t client)
{
	struct sockaddr_un addr;
	sigset_t none;
	int fd, agent, open_fds = (int)sysconf(_SC_OPEN_MAX);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (open_fds < 0 || open_fds > 65536)
		open_fds = 65536;
	for (fd = 0; fd < open_fds; fd++)
		if (fd != conn)
			close(fd);
	agent = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (agent < 0 || strlen(agent_path) >= sizeof(addr.sun_path))
		_exit(1);
	memcpy(addr.sun_path, agent_path, strlen(agent_path));
	if (connect(agent, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		_exit(1);
	for (;;) {
		struct pollfd p[2] = { { conn, POLLIN, 0 }, { agent, POLLIN, 0 } };
		int ready = poll(p, 2, 1000);

		/* The session is over: an agent connection left open must not outlive it. */
		if (getppid() != client)
			_exit(0);
		if (ready < 0 && errno != EINTR)
			_exit(1);
		if (ready <= 0)
			continue;
		if ((p[0].revents && !pump(conn, agent)) || (p[1].revents && !pump(agent, conn)))
			_exit(0);
	}
}

void agent_accept(int listener)
{
	const char *path = getenv("SSH_AUTH_SOCK");
	int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	pid_t self = getpid(), child;

	if (conn < 0)
		return;
	if (path && *path) {
		child = fork();
		if (child == 0)
			relay_child(conn, path, self);
	}
	close(conn);
}

void agent_reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int skiff_agent_relay(int argc, char **argv)
{
	int listener;
	const char *error;
	pid_t self = getpid();

	if (argc != 6) {
		fprintf(stderr, "usage: skiff-core-agent-relay PID UID GID DIR SOCKET\n");
		return 2;
	}
	error = agent_listen(atol(argv[1]), atol(argv[2]), atol(argv[3]), argv[4], &listener);
	if (error) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (write(1, "ready\n", 6) != 6)
		return 1;
	for (;;) {
		struct pollfd p[2] = { { 0, POLLIN, 0 }, { listener, POLLIN, 0 } };
		int ready = poll(p, 2, 1000);

		agent_reap();
		if (ready < 0 && errno != EINTR)
			return 1;
		/* The daemon closed our stdin: the session is over. */
		if (ready > 0 && p[0].revents)
			return 0;
		if (ready > 0 && p[1].revents) {
			int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

			if (conn < 0)
				continue;
			if (fork() == 0)
				relay_child(conn, argv[5], self);
			close(conn);
		}
	}
}
