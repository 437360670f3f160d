/*
 * The daemon's hand-off helper: passes exec connections to login clients. Node.js cannot send a
 * descriptor over a Unix socket, but it can send one to a child over its IPC channel
 * (subprocess.send(message, socket)). The daemon starts this once, as "skiff-core-handoff" with
 * the channel as NODE_CHANNEL_FD, and for each session sends two sockets tagged with one id: the
 * client's session socket, then the exec's engine connection. This sends the second over the
 * first (SCM_RIGHTS, attached to an empty frame of type FRAME_FD so the client's frame decoder
 * stays in step), closes both, and answers {"id":N,"ok":1} or {"id":N,"error":"..."}.
 *
 * For agent forwarding (agent.c) a plain message {"id":M,"role":"agent","client":N,"pid":…,
 * "uid":…,"gid":…,"dir":"skiff-agent-…"} follows the client socket N: the listening socket made
 * in the container goes to that client in a frame of type FRAME_AGENT, and the client socket is
 * closed; the engine connection comes later under another id.
 *
 * Node's channel carries one JSON object per line; a message that carries a descriptor is
 * {"cmd":"NODE_HANDLE",...,"msg":<the daemon's message>} with the descriptor on its bytes, and
 * Node sends no other descriptor until it reads {"cmd":"NODE_HANDLE_ACK"}. See
 * src/session/handoff.ts for the other side. It exits when the daemon closes the channel.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "fds.h"
#include "json.h"
#include "login.h"

#define FRAME_FD 25
#define FRAME_AGENT 26
#define MAX_WAITING 64
#define LINE_MAX_LEN 4096

static int channel = 3;

/* Client sockets waiting for their engine connection, by id. */
static struct {
	long id;
	int fd;
} waiting[MAX_WAITING];
static size_t waiting_next;

/* Descriptors received and not yet matched to their NODE_HANDLE line. */
static int fds[16];
static size_t nfds;

static void reply(long id, const char *error)
{
	char line[256];
	size_t len, off = 0;

	if (error)
		snprintf(line, sizeof(line), "{\"id\":%ld,\"error\":\"%s\"}\n", id, error);
	else
		snprintf(line, sizeof(line), "{\"id\":%ld,\"ok\":1}\n", id);
	len = strlen(line);
	while (off < len) {
		ssize_t n = write(channel, line + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			exit(0); /* the daemon is gone */
		off += (size_t)n;
	}
}

/* Sends `fd` over `client`; never waits (a client that does not read loses its session). */
static const char *pass(int client, int fd, unsigned char type)
{
	const unsigned char frame[5] = { type, 0, 0, 0, 0 };
	ssize_t sent = send_with_fd(client, frame, sizeof(frame), fd);

	if (sent == (ssize_t)sizeof(frame))
		return NULL;
	return sent < 0 && errno == EAGAIN ? "the client is not reading" : "the client's socket is closed";
}

static long number_after(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* The client socket that came with `id`, taken out of the waiting list; -1 if none. */
static int take_client(long id)
{
	size_t i;

	for (i = 0; i < MAX_WAITING; i++) {
		if (waiting[i].fd > 0 && waiting[i].id == id) {
			int fd = waiting[i].fd;

			waiting[i].fd = 0;
			return fd;
		}
	}
	return -1;
}

static void on_agent(const char *line)
{
	char name[80] = "";
	int listener = -1;
	long id = number_after(line, "\"id\":");
	int client = take_client(number_after(line, "\"client\":"));
	const char *error;

	json_string(json_field(line, "dir"), name, sizeof(name));
	if (client < 0) {
		reply(id, "no client socket arrived");
		return;
	}
	error = agent_listen(number_after(line, "\"pid\":"), number_after(line, "\"uid\":"), number_after(line, "\"gid\":"), name,
			     &listener);
	if (!error)
		error = pass(client, listener, FRAME_AGENT);
	if (listener >= 0)
		close(listener);
	close(client);
	reply(id, error);
}

static void on_line(const char *line)
{
	int fd = -1;
	long id;
	size_t i;

	if (strstr(line, "\"cmd\":\"NODE_HANDLE\"") == NULL) {
		if (strstr(line, "\"role\":\"agent\""))
			on_agent(line);
		return;
	}
	if (nfds > 0) {
		fd = fds[0];
		memmove(fds, fds + 1, --nfds * sizeof(int));
	}
	/* Node sends no further descriptor until this. */
	{
		static const char ack[] = "{\"cmd\":\"NODE_HANDLE_ACK\"}\n";

		if (write(channel, ack, sizeof(ack) - 1) != (ssize_t)sizeof(ack) - 1)
			exit(0);
	}
	id = number_after(line, "\"id\":");
	if (strstr(line, "\"role\":\"client\"")) {
		if (waiting[waiting_next].fd > 0)
			close(waiting[waiting_next].fd);
		waiting[waiting_next].id = id;
		waiting[waiting_next].fd = fd;
		waiting_next = (waiting_next + 1) % MAX_WAITING;
		return;
	}
	for (i = 0; i < MAX_WAITING; i++) {
		if (waiting[i].fd > 0 && waiting[i].id == id) {
			const char *error = fd < 0 ? "no engine connection arrived" : pass(waiting[i].fd, fd, FRAME_FD);

			close(waiting[i].fd);
			waiting[i].fd = 0;
			if (fd >= 0)
				close(fd);
			reply(id, error);
			return;
		}
	}
	if (fd >= 0)
		close(fd);
	reply(id, "no client socket arrived");
}

int skiff_handoff(void)
{
	char line[LINE_MAX_LEN];
	size_t len = 0;
	const char *env = getenv("NODE_CHANNEL_FD");

	if (env)
		channel = atoi(env);
	for (;;) {
		char data[4096];
		int got[8];
		size_t count, k;
		ssize_t n = recv_with_fds(channel, data, sizeof(data), got, sizeof(got) / sizeof(got[0]), &count);
		ssize_t i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		for (k = 0; k < count; k++) {
			if (nfds < sizeof(fds) / sizeof(fds[0]))
				fds[nfds++] = got[k];
			else
				close(got[k]);
		}
		for (i = 0; i < n; i++) {
			if (data[i] != '\n') {
				if (len < sizeof(line) - 1)
					line[len++] = data[i];
				continue;
			}
			line[len] = '\0';
			on_line(line);
			len = 0;
		}
	}
}
