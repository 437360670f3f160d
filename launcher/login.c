/*
 * The native login client: a mapped user's login shell (sshd runs "-skiff-core" or
 * "skiff-core -c CMD"). It asks the daemon for a session on the user's own socket
 * (RUN_DIR/users/NAME.sock), shows setup progress while the container is pulled, built or booted,
 * and then gets the exec's engine connection itself (SCM_RIGHTS, see handoff.c): from there on
 * the session's bytes go between sshd and the engine without the daemon. The daemon connection
 * stays open for what needs it (resize, signals, the exit status, killing the session's processes
 * when this client goes away); when the daemon restarts, the client reconnects and presents the
 * session's token, and the session never notices.
 *
 * The wire format is src/session/frames.ts: [type u8][length u32 BE][payload], JSON for control.
 * Without a TTY the engine connection carries Docker's stdio frames ([stream u8][0 0 0][size u32
 * BE]), demultiplexed here into stdout and stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "fds.h"
#include "json.h"
#include "login.h"

enum {
	F_HELLO = 1,
	F_STDIN = 2,
	F_STDIN_END = 3,
	F_RESIZE = 4,
	F_SIGNAL = 5,
	F_DONE = 6,
	F_PROGRESS = 16,
	F_STDOUT = 17,
	F_STDERR = 18,
	F_EXIT = 19,
	F_ERROR = 20,
	F_STARTED = 21,
	F_HANDOFF = 22,
	F_RESUMED = 23,
	F_ENGINE_HEAD = 24,
	F_FD = 25,
	F_AGENT = 26,
};

#define CHUNK 65536
/* Read no more from a source while this much waits for its destination (backpressure). */
#define HIGH_WATER (256 * 1024)
#define MAX_FRAME (8 * 1024 * 1024)
#define CONNECT_WAIT_MS 10000
#define RETRY_MS 250
/* How long an ended session waits for a restarting daemon to tell its exit status. */
#define EXIT_WAIT_MS 60000

static struct {
	int tty, d, e, pending_fd, agent;
	int handed, started, progress_shown, stdin_open, stdin_eof, e_shut, e_eof;
	int done_sent, exited, refused, finished, code, rehellos;
	struct buf din, dout, ein, out[2], hello;
	unsigned char hdr[8];
	size_t hdr_len;
	uint32_t left;
	int target;
	char session[160], token[160], path[4096];
	long long lost_at, retry_at;
	pid_t parent;
} S;

static volatile sig_atomic_t got_winch, got_quit, got_fwd;
static struct termios saved_termios;
static int saved_flags[3] = { -1, -1, -1 };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the terminal and our descriptors ---------------------------------------------------- */

static void terminal_size(int *cols, int *rows)
{
	struct winsize ws;

	*cols = *rows = 0;
	if (ioctl(1, TIOCGWINSZ, &ws) == 0 || ioctl(0, TIOCGWINSZ, &ws) == 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
	}
}

static void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void restore_descriptors(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++)
		if (saved_flags[fd] >= 0)
			fcntl(fd, F_SETFL, saved_flags[fd]);
	if (S.tty)
		tcsetattr(0, TCSADRAIN, &saved_termios);
}

/* --- output ------------------------------------------------------------------------------ */

static void say(const char *text)
{
	buf_str(&S.out[1], text);
}

/* A line from skiff-core on stderr; on a terminal after the progress line and with \r\n. */
static void say_line(const char *message)
{
	const char *nl = S.tty ? "\r\n" : "\n";
	const char *p;

	if (S.tty && S.progress_shown)
		say("\r\n");
	say("skiff-core: ");
	for (p = message; *p; p++) {
		if (*p == '\n')
			say(nl);
		else
			buf_add(&S.out[1], p, 1);
	}
	say(nl);
}

/* Output for stdout (0) or stderr (1): written at once when nothing waits before it. */
static void emit(int target, const unsigned char *data, size_t n)
{
	if (S.out[target].len == 0) {
		ssize_t w = write(target + 1, data, n);

		if (w > 0) {
			data += w;
			n -= (size_t)w;
		}
	}
	if (n)
		buf_add(&S.out[target], data, n);
}

/* Bytes from the engine: raw with a TTY, else Docker's stdio frames. */
static void engine_output(const unsigned char *data, size_t n)
{
	if (S.tty) {
		emit(0, data, n);
		return;
	}
	while (n > 0) {
		if (S.left == 0) {
			size_t take = sizeof(S.hdr) - S.hdr_len;

			if (take > n)
				take = n;
			memcpy(S.hdr + S.hdr_len, data, take);
			S.hdr_len += take;
			data += take;
			n -= take;
			if (S.hdr_len == sizeof(S.hdr)) {
				S.target = S.hdr[0] == 2 ? 1 : 0;
				S.left = (uint32_t)S.hdr[4] << 24 | (uint32_t)S.hdr[5] << 16 | (uint32_t)S.hdr[6] << 8 | S.hdr[7];
				S.hdr_len = 0;
			}
			continue;
		}
		{
			size_t take = n < S.left ? n : S.left;

			emit(S.target, data, take);
			data += take;
			n -= take;
			S.left -= (uint32_t)take;
		}
	}
}

/* --- the daemon connection ------------------------------------------------------------- */

static int dial(void)
{
	struct sockaddr_un addr;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, S.path, strlen(S.path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	set_nonblocking(fd);
	return fd;
}

static void add_size(struct buf *b)
{
	int cols, rows;
	char text[64];

	terminal_size(&cols, &rows);
	if (S.tty && cols > 0 && rows > 0) {
		snprintf(text, sizeof(text), ",\"cols\":%d,\"rows\":%d", cols, rows);
		buf_str(b, text);
	}
}

static void send_json(int type, struct buf *json)
{
	frame_add(&S.dout, type, json->p, json->len);
	json->len = 0;
}

static void send_hello(const char *command)
{
	static const char *const forwarded[] = {
		"TERM", "LANG", "COLORTERM", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "SSH_ORIGINAL_COMMAND", NULL
	};
	extern char **environ;
	struct buf j = { 0 };
	char **e;
	int first = 1;

	buf_str(&j, S.tty ? "{\"v\":1,\"tty\":true" : "{\"v\":1,\"tty\":false");
	/* Root may ask for the relayed path (the hostile-client tests record it). */
	if (getuid() != 0 || getenv("SKIFF_CORE_NO_HANDOFF") == NULL)
		buf_str(&j, ",\"handoff\":true");
	/* The daemon decides whether it is forwarded (the user's auth.agentForwarding). */
	if (getenv("SSH_AUTH_SOCK") && *getenv("SSH_AUTH_SOCK"))
		buf_str(&j, ",\"agent\":true");
	add_size(&j);
	if (command) {
		buf_str(&j, ",\"command\":");
		json_escape(&j, command);
	}
	buf_str(&j, ",\"env\":{");
	for (e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		const char *const *f;
		int keep = eq && strncmp(*e, "LC_", 3) == 0;
		char name[256];

		if (!eq || (size_t)(eq - *e) >= sizeof(name))
			continue;
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		for (f = forwarded; *f && !keep; f++)
			keep = strcmp(name, *f) == 0;
		if (!keep)
			continue;
		if (!first)
			buf_str(&j, ",");
		first = 0;
		json_escape(&j, name);
		buf_str(&j, ":");
		json_escape(&j, eq + 1);
	}
	buf_str(&j, "}}");
	/* Kept: a login still waiting asks again if the daemon restarts meanwhile. */
	frame_add(&S.hello, F_HELLO, j.p, j.len);
	send_json(F_HELLO, &j);
	free(j.p);
}

static void send_resize(void)
{
	struct buf j = { 0 };

	buf_str(&j, "{\"x\":0");
	add_size(&j);
	buf_str(&j, "}");
	if (j.len > 8)
		send_json(F_RESIZE, &j);
	free(j.p);
}

/* After a daemon restart: take the running session back with its token. */
static void send_resume(void)
{
	struct buf j = { 0 };

	buf_str(&j, S.tty ? "{\"v\":1,\"tty\":true,\"env\":{}" : "{\"v\":1,\"tty\":false,\"env\":{}");
	add_size(&j);
	buf_str(&j, ",\"resume\":{\"session\":");
	json_escape(&j, S.session);
	buf_str(&j, ",\"token\":");
	json_escape(&j, S.token);
	buf_str(&j, "}}");
	send_json(F_HELLO, &j);
	free(j.p);
	if (S.e_eof)
		frame_add(&S.dout, F_DONE, NULL, 0);
	S.done_sent = S.e_eof;
}

/* A waiting login asks the next daemon again, a few times (not forever: it may be what failed). */
#define MAX_REHELLOS 3

static void daemon_lost(void)
{
	if (S.d >= 0)
		close(S.d);
	S.d = -1;
	S.din.len = S.dout.len = 0;
	S.lost_at = now_ms();
	S.retry_at = S.lost_at + 100;
	/* The session runs on; its control comes back with the next daemon. */
	if (S.handed && !S.exited && !S.refused)
		return;
	/* Refused by the next daemon: the bytes still flow until the exec ends. */
	if (S.handed && S.refused && !S.e_eof)
		return;
	if (!S.handed && !S.started && !S.exited && S.code == 255 && S.rehellos < MAX_REHELLOS) {
		S.rehellos++;
		return;
	}
	if (!S.exited && !S.refused && S.code == 255)
		say_line(
			"the skiff-core daemon closed the connection; try again (\"skiff-core status\" on the device says more)");
	S.finished = 1;
}

static void started(void)
{
	if (S.tty && S.progress_shown && !S.started)
		say("\r\033[2K");
	S.started = 1;
}

static void on_frame(int type, const unsigned char *payload, size_t n)
{
	char *json = NULL;
	char text[4096];

	if (type == F_STDOUT || type == F_STDERR) {
		buf_add(&S.out[type == F_STDERR], payload, n);
		return;
	}
	if (type == F_ENGINE_HEAD) {
		engine_output(payload, n);
		return;
	}
	json = malloc(n + 1);
	if (json == NULL)
		die_oom();
	memcpy(json, payload, n);
	json[n] = '\0';
	switch (type) {
	case F_PROGRESS:
		if (json_string(json_field(json, "line"), text, sizeof(text))) {
			if (S.tty) {
				int cols, rows;

				terminal_size(&cols, &rows);
				if (cols <= 1)
					cols = 80;
				if (strlen(text) > (size_t)cols - 1)
					text[cols - 1] = '\0';
				say("\r\033[2K");
				say(text);
			} else {
				say(text);
				say("\n");
			}
			S.progress_shown = 1;
		}
		break;
	case F_STARTED:
		started();
		if (!S.handed && S.ein.len) {
			frame_add(&S.dout, F_STDIN, S.ein.p, S.ein.len);
			S.ein.len = 0;
		}
		if (!S.handed && S.stdin_eof)
			frame_add(&S.dout, F_STDIN_END, NULL, 0);
		break;
	case F_EXIT: {
		const char *v = json_field(json, "code");

		S.code = v ? atoi(v) : 255;
		S.exited = 1;
		break;
	}
	case F_ERROR:
		if (!json_string(json_field(json, "message"), text, sizeof(text)))
			strcpy(text, "unknown error");
		say_line(text);
		S.code = S.handed ? 255 : 1;
		if (S.handed)
			S.refused = 1;
		break;
	case F_HANDOFF:
		json_string(json_field(json, "session"), S.session, sizeof(S.session));
		json_string(json_field(json, "token"), S.token, sizeof(S.token));
		break;
	case F_AGENT:
		/*
		 * The container's agent socket: connections to it are relayed to $SSH_AUTH_SOCK. A
		 * daemon that restarted before the session began sends its own; that one is in use.
		 */
		if (S.pending_fd >= 0) {
			if (S.agent >= 0)
				close(S.agent);
			S.agent = S.pending_fd;
			S.pending_fd = -1;
			set_nonblocking(S.agent);
		}
		break;
	case F_FD:
		if (S.pending_fd < 0) {
			say_line("the daemon's hand-over carried no connection");
			S.finished = 1;
			break;
		}
		S.e = S.pending_fd;
		S.pending_fd = -1;
		set_nonblocking(S.e);
		S.handed = 1;
		started();
		break;
	default:
		break;
	}
	free(json);
}

static void read_daemon(void)
{
	unsigned char data[CHUNK];
	int fds[4];
	size_t count, i;
	ssize_t n = recv_with_fds(S.d, data, sizeof(data), fds, sizeof(fds) / sizeof(fds[0]), &count);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (i = 0; i < count; i++) {
		/* One connection per session: anything else is closed. */
		if (S.pending_fd < 0 && !S.handed)
			S.pending_fd = fds[i];
		else
			close(fds[i]);
	}
	if (n <= 0) {
		daemon_lost();
		return;
	}
	buf_add(&S.din, data, (size_t)n);
	while (S.din.len >= 5 && S.d >= 0) {
		size_t len = (size_t)S.din.p[1] << 24 | (size_t)S.din.p[2] << 16 | (size_t)S.din.p[3] << 8 | S.din.p[4];

		if (len > MAX_FRAME) {
			say_line("the daemon sent a frame that is too large");
			S.finished = 1;
			return;
		}
		if (S.din.len < 5 + len)
			break;
		on_frame(S.din.p[0], S.din.p + 5, len);
		buf_drop(&S.din, 5 + len);
	}
}

/* --- input ------------------------------------------------------------------------------- */

static void read_stdin(void)
{
	unsigned char data[CHUNK];
	ssize_t n = read(0, data, sizeof(data));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		S.stdin_open = 0;
		S.stdin_eof = 1;
		if (S.started && !S.handed)
			frame_add(&S.dout, F_STDIN_END, NULL, 0);
		return;
	}
	if (!S.started && S.tty && memchr(data, 3, (size_t)n)) {
		say("\r\nskiff-core: stopped waiting; setup continues in the background.\r\n");
		S.code = 130;
		S.finished = 1;
		return;
	}
	if (S.started && !S.handed)
		frame_add(&S.dout, F_STDIN, data, (size_t)n);
	else
		buf_add(&S.ein, data, (size_t)n);
}

static void read_engine(void)
{
	/* Large reads: bulk output is most of what a session moves. */
	static unsigned char data[4 * CHUNK];
	ssize_t n = recv(S.e, data, sizeof(data), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close(S.e);
		S.e = -1;
		S.e_eof = 1;
		S.ein.len = 0;
		S.stdin_open = 0;
		if (S.d >= 0 && !S.done_sent) {
			frame_add(&S.dout, F_DONE, NULL, 0);
			S.done_sent = 1;
		}
		return;
	}
	engine_output(data, (size_t)n);
}

/* Writes what it can of `b` to `fd`; -1 when the other side is gone. */
static int flush(int fd, struct buf *b, int socket)
{
	while (b->len) {
		ssize_t n = socket ? send(fd, b->p, b->len, MSG_NOSIGNAL) : write(fd, b->p, b->len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		buf_drop(b, (size_t)n);
	}
	return 0;
}

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGHUP || sig == SIGTERM)
		got_quit = sig;
	else
		got_fwd = sig;
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGINT:
		return "INT";
	case SIGQUIT:
		return "QUIT";
	case SIGUSR1:
		return "USR1";
	case SIGUSR2:
		return "USR2";
	case SIGALRM:
		return "ALRM";
	default:
		return NULL;
	}
}

static void handle_signals(void)
{
	if (got_winch) {
		got_winch = 0;
		if (S.d >= 0 && S.tty)
			send_resize();
	}
	if (got_fwd) {
		const char *name = signal_name(got_fwd);

		got_fwd = 0;
		if (!S.started) {
			S.code = 130;
			S.finished = 1;
		} else if (S.d >= 0 && name) {
			struct buf j = { 0 };

			buf_str(&j, "{\"name\":\"");
			buf_str(&j, name);
			buf_str(&j, "\"}");
			send_json(F_SIGNAL, &j);
			free(j.p);
		}
	}
	if (got_quit) {
		S.code = 128 + got_quit;
		S.finished = 1;
	}
}

static int session_path(void)
{
	const char *dir = "/run/skiff-core";
	const char *user = NULL;
	struct passwd *pw;

	if (getuid() == 0) {
		if (getenv("SKIFF_CORE_RUN_DIR") && *getenv("SKIFF_CORE_RUN_DIR"))
			dir = getenv("SKIFF_CORE_RUN_DIR");
		user = getenv("SKIFF_CORE_SESSION_USER");
	}
	if (user == NULL || *user == '\0' || strchr(user, '/')) {
		pw = getpwuid(getuid());
		if (pw == NULL) {
			fprintf(stderr, "skiff-core: cannot start your session: uid %u has no name in /etc/passwd\n",
				(unsigned)getuid());
			return -1;
		}
		user = pw->pw_name;
	}
	if ((size_t)snprintf(S.path, sizeof(S.path), "%s/users/%s.sock", dir, user) >= sizeof(S.path) ||
	    strlen(S.path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "skiff-core: cannot start your session: socket path too long: %s\n", S.path);
		return -1;
	}
	return 0;
}

/* The first connection; a daemon that is starting gets CONNECT_WAIT_MS to open the socket. */
static int first_dial(void)
{
	long long deadline = now_ms() + CONNECT_WAIT_MS;
	int told = 0;

	for (;;) {
		int fd = dial();
		struct timespec pause = { 0, RETRY_MS * 1000000L };

		if (fd >= 0)
			return fd;
		if (fd == -EACCES) {
			fprintf(stderr,
				"skiff-core: cannot start your session: %s: permission denied (this account is not the socket's user)\n",
				S.path);
			return -1;
		}
		if (now_ms() > deadline) {
			if (fd == -ENOENT || fd == -ECONNREFUSED)
				fprintf(stderr,
					"skiff-core: cannot start your session: the skiff-core daemon is not running, or this account is not mapped to a container (ask the device owner to check \"skiff-core status\")\n");
			else
				fprintf(stderr, "skiff-core: cannot start your session: %s: %s\n", S.path, strerror(-fd));
			return -1;
		}
		if (!told) {
			fputs("skiff-core: waiting for the skiff-core daemon...\n", stderr);
			told = 1;
		}
		nanosleep(&pause, NULL);
	}
}

static void setup_signals(sigset_t *during_poll)
{
	static const int caught[] = { SIGWINCH, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM };
	struct sigaction sa;
	sigset_t block;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	for (i = 0; i < sizeof(caught) / sizeof(caught[0]); i++) {
		sigaction(caught[i], &sa, NULL);
		sigaddset(&block, caught[i]);
	}
	/* Delivered only inside ppoll, so a signal never interrupts the loop half-way. */
	sigprocmask(SIG_BLOCK, &block, during_poll);
	for (i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		sigdelset(during_poll, caught[i]);
}

static void finish_output(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (saved_flags[i + 1] >= 0)
			fcntl(i + 1, F_SETFL, saved_flags[i + 1]);
		while (S.out[i].len) {
			ssize_t n = write(i + 1, S.out[i].p, S.out[i].len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			buf_drop(&S.out[i], (size_t)n);
		}
	}
}

static void run_loop(const sigset_t *during_poll)
{
	struct pollfd p[7];
	int fds = 0;

	while (!S.finished) {
		size_t pending = S.out[0].len + S.out[1].len;
		struct timespec tick = { 0, RETRY_MS * 1000000L };
		int n = 0, i_stdin = -1, i_d = -1, i_e = -1, i_agent = -1, i_out[2] = { -1, -1 };
		int i;

		handle_signals();
		if (S.finished)
			break;
		/* Without a terminal, a client that goes away leaves us reparented: end the session. */
		if (getppid() != S.parent) {
			S.code = 255;
			S.out[0].len = S.out[1].len = 0;
			break;
		}
		if (S.d < 0 && !S.refused && now_ms() >= S.retry_at) {
			S.d = dial();
			if (S.d >= 0 && S.handed) {
				send_resume();
			} else if (S.d >= 0) {
				buf_add(&S.dout, S.hello.p, S.hello.len);
			} else if (S.handed ? S.e_eof && now_ms() - S.lost_at > EXIT_WAIT_MS
					    : now_ms() - S.lost_at > CONNECT_WAIT_MS) {
				say_line(
					S.handed
						? "the session ended while the skiff-core daemon was away, and it did not come back to tell the exit status"
						: "the skiff-core daemon went away and did not come back; try again");
				break;
			}
			S.retry_at = now_ms() + RETRY_MS;
		}
		if (S.e_eof && (S.exited || S.refused) && pending == 0)
			break;
		if (S.e >= 0 && S.stdin_eof && !S.tty && !S.e_shut && S.ein.len == 0) {
			shutdown(S.e, SHUT_WR);
			S.e_shut = 1;
		}

		if (S.stdin_open && (S.tty || S.started) && S.ein.len < HIGH_WATER && S.dout.len < HIGH_WATER) {
			p[n] = (struct pollfd){ 0, POLLIN, 0 };
			i_stdin = n++;
		}
		if (S.d >= 0) {
			p[n] = (struct pollfd){ S.d, (short)((pending < HIGH_WATER ? POLLIN : 0) | (S.dout.len ? POLLOUT : 0)),
						0 };
			i_d = n++;
		}
		if (S.e >= 0) {
			p[n] = (struct pollfd){
				S.e, (short)((pending < HIGH_WATER ? POLLIN : 0) | (S.ein.len && S.handed ? POLLOUT : 0)), 0
			};
			i_e = n++;
		}
		for (i = 0; i < 2; i++)
			if (S.out[i].len) {
				p[n] = (struct pollfd){ i + 1, POLLOUT, 0 };
				i_out[i] = n++;
			}
		if (S.agent >= 0) {
			p[n] = (struct pollfd){ S.agent, POLLIN, 0 };
			i_agent = n++;
			agent_reap();
		}
		fds = ppoll(p, (nfds_t)n, &tick, during_poll);
		if (fds < 0 && errno != EINTR)
			break;
		if (fds <= 0)
			continue;
		for (i = 0; i < 2; i++)
			if (i_out[i] >= 0 && p[i_out[i]].revents && flush(i + 1, &S.out[i], 0) < 0) {
				S.code = 255;
				S.out[0].len = S.out[1].len = 0;
				return;
			}
		if (i_e >= 0 && (p[i_e].revents & POLLOUT) && flush(S.e, &S.ein, 1) < 0) {
			S.ein.len = 0;
			S.stdin_open = 0;
		}
		if (i_e >= 0 && (p[i_e].revents & (POLLIN | POLLHUP | POLLERR)) && S.e >= 0)
			read_engine();
		if (i_d >= 0 && (p[i_d].revents & POLLOUT) && S.d >= 0 && flush(S.d, &S.dout, 1) < 0)
			daemon_lost();
		if (i_d >= 0 && (p[i_d].revents & (POLLIN | POLLHUP | POLLERR)) && S.d >= 0)
			read_daemon();
		if (i_stdin >= 0 && p[i_stdin].revents)
			read_stdin();
		if (i_agent >= 0 && p[i_agent].revents)
			agent_accept(S.agent);
	}
}

int skiff_login(const char *command)
{
	sigset_t during_poll;

	memset(&S, 0, sizeof(S));
	S.d = S.e = S.pending_fd = S.agent = -1;
	S.code = 255;
	S.stdin_open = 1;
	S.parent = getppid();
	if (session_path() != 0)
		return 1;
	S.d = first_dial();
	if (S.d < 0)
		return 1;
	S.tty = isatty(0) && isatty(1);
	setup_signals(&during_poll);
	send_hello(command);
	if (S.tty && tcgetattr(0, &saved_termios) == 0) {
		struct termios raw = saved_termios;

		/* The container's terminal does all processing; ours passes bytes through. */
		cfmakeraw(&raw);
		tcsetattr(0, TCSADRAIN, &raw);
	} else {
		S.tty = 0;
	}
	/* Saved before any is changed: on a terminal, all three share one set of flags. */
	saved_flags[0] = fcntl(0, F_GETFL);
	saved_flags[1] = fcntl(1, F_GETFL);
	saved_flags[2] = fcntl(2, F_GETFL);
	set_nonblocking(0);
	set_nonblocking(1);
	set_nonblocking(2);
	run_loop(&during_poll);
	finish_output();
	restore_descriptors();
	return S.code;
}
