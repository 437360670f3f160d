/*
 * The skiff-core launcher, installed as /usr/bin/skiff-core. A login (argv[0] starting with '-',
 * or "-c CMD") is served here, natively (login.c): no Node.js per session. Everything else (root's
 * CLI, the daemon) runs the bundle with Node.js. Started as "skiff-core-handoff" it is the
 * daemon's helper that passes a session's connection to its client (handoff.c).
 *
 * It is compiled, not a "#!" script, because it is also the login shell of mapped users. sshd
 * starts a login shell as argv = {"-skiff-core"} and a command as {"skiff-core", "-c", CMD}; the
 * kernel replaces argv[0] with the script's path when it runs a "#!" script, so a script launcher
 * could not tell a login from root typing `skiff-core` with no arguments.
 *
 * Contract with the CLI (src/cli):
 *   - SKIFF_CORE_ARGV0 carries the argv[0] this launcher was started with ("" if it had none).
 *     The CLI reads it instead of process.argv0 (which names node); a leading '-' means a login
 *     shell. The launcher always sets it, so an inherited value never gets through.
 *   - The arguments follow the bundle's path unchanged, so none of them can become a Node.js
 *     option.
 *   - For anyone but root, only an allowlist of variables reaches node (the terminal, locale and
 *     SSH ones the session passes on, and the user's identity); PATH is always fixed. A user's
 *     environment (sshd's AcceptEnv, ~/.ssh/environment) must not change how the login shell
 *     runs: NODE_OPTIONS=--inspect would open a debugger port, GCONV_PATH or LOCPATH would load
 *     other code into glibc, SKIFF_CORE_RUN_DIR would point it elsewhere. Root (the daemon, an
 *     administrator) keeps its environment less what changes how Node.js, libuv, OpenSSL or the
 *     dynamic loader behave (NODE_*, UV_*, OPENSSL_*, LD_*, GCONV_PATH, LOCPATH, GLIBC_TUNABLES).
 *   - SKIFF_CORE_LAUNCHER names this executable, so the daemon can start it as its helper.
 *   - node replaces this process (execve), so the PID systemd and sshd know is node's.
 *
 * Paths are fixed when compiling (see the Makefile): SKIFF_CORE_NODE, SKIFF_CORE_BUNDLE.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "login.h"

#ifndef SKIFF_CORE_NODE
#define SKIFF_CORE_NODE "/usr/bin/node"
#endif
#ifndef SKIFF_CORE_BUNDLE
#define SKIFF_CORE_BUNDLE "/usr/lib/skiff-core/skiff-core.mjs"
#endif

/*
 * V8's young generation capped at 1 MB: the daemon runs for months on boards with 512 MB, and
 * this keeps its resident memory about 20 MB lower (measured with `npm run bench`, 6a), for more
 * frequent minor collections of a heap that holds about 11 MB.
 */
#define NODE_FLAG "--max-semi-space-size=1"
/* glibc's malloc keeps an arena per thread; two hold the daemon's private memory to about half. */
#define MALLOC_ENTRY "MALLOC_ARENA_MAX=2"

#define ARGV0_VAR "SKIFF_CORE_ARGV0"
#define SELF_VAR "SKIFF_CORE_LAUNCHER"

extern char **environ;

#define FIXED_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Variables a non-root caller may pass on, by exact name or (ending in '_') by prefix. */
static const char *const allowed[] = {
	"TERM",
	"COLORTERM",
	"LANG",
	"LANGUAGE",
	"LC_",
	"TZ",
	"NO_COLOR",
	"HOME",
	"USER",
	"LOGNAME",
	"SHELL",
	"MAIL",
	"SSH_CONNECTION",
	"SSH_CLIENT",
	"SSH_TTY",
	"SSH_ORIGINAL_COMMAND",
	NULL,
};

/* Prefixes never passed on, whoever calls: they change how node or glibc run. */
static const char *const never[] = {
	"NODE_",	   "UV_",   "OPENSSL_",	   "LD_",	 "GCONV_PATH=",	      "LOCPATH=",
	"GLIBC_TUNABLES=", "PATH=", ARGV0_VAR "=", SELF_VAR "=", "MALLOC_ARENA_MAX=", NULL,
};

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether "NAME=value" has the name `name` ("X" matches X=..., "X_" matches X_anything=...). */
static int named(const char *entry, const char *name)
{
	size_t len = strlen(name);

	if (strncmp(entry, name, len) != 0)
		return 0;
	return name[len - 1] == '_' ? strchr(entry + len, '=') != NULL : entry[len] == '=';
}

/* Whether an environment entry ("NAME=value") reaches node. */
static int kept(const char *entry, int root)
{
	const char *const *p;

	for (p = never; *p != NULL; p++)
		if (has_prefix(entry, *p))
			return 0;
	if (root)
		return 1;
	for (p = allowed; *p != NULL; p++)
		if (named(entry, *p))
			return 1;
	return 0;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL) {
		fputs("skiff-core: out of memory\n", stderr);
		exit(127);
	}
	return p;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* "-c" and the words after it, joined by spaces (sshd passes the command as one word). */
static int login_command(int argc, char **argv)
{
	size_t len = 1;
	char *command;
	int i;

	for (i = 2; i < argc; i++)
		len += strlen(argv[i]) + 1;
	command = xcalloc(len, 1);
	for (i = 2; i < argc; i++) {
		if (i > 2)
			strcat(command, " ");
		strcat(command, argv[i]);
	}
	return skiff_login(command);
}

int main(int argc, char **argv)
{
	const char *argv0 = argc > 0 && argv[0] != NULL ? argv[0] : "";
	size_t count = 0, n = 0;
	char **env, **args, **e;
	char *argv0_entry, *self_entry;
	char self[4096];
	ssize_t self_len;
	int i;

	int root = getuid() == 0;

	if (strcmp(base_name(argv0), "skiff-core-handoff") == 0)
		return skiff_handoff();
	if (strcmp(base_name(argv0), "skiff-core-agent-relay") == 0 && root)
		return skiff_agent_relay(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "-c") == 0)
		return login_command(argc, argv);
	if (argv0[0] == '-' && argc <= 1)
		return skiff_login(NULL);

	for (e = environ; e != NULL && *e != NULL; e++)
		count++;
	env = xcalloc(count + 5, sizeof(*env));
	env[n++] = FIXED_PATH;
	env[n++] = MALLOC_ENTRY;
	for (e = environ; e != NULL && *e != NULL; e++)
		if (kept(*e, root))
			env[n++] = *e;
	argv0_entry = xcalloc(strlen(ARGV0_VAR "=") + strlen(argv0) + 1, 1);
	strcpy(argv0_entry, ARGV0_VAR "=");
	strcat(argv0_entry, argv0);
	env[n++] = argv0_entry;
	self_len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (self_len > 0) {
		self[self_len] = '\0';
		self_entry = xcalloc(strlen(SELF_VAR "=") + (size_t)self_len + 1, 1);
		strcpy(self_entry, SELF_VAR "=");
		strcat(self_entry, self);
		env[n] = self_entry;
	}

	/* node, its flag, the bundle, then argv[1..]: argc + 3 slots with the terminating NULL. */
	args = xcalloc((size_t)(argc > 0 ? argc : 1) + 3, sizeof(*args));
	n = 0;
	args[n++] = SKIFF_CORE_NODE;
	args[n++] = NODE_FLAG;
	args[n++] = SKIFF_CORE_BUNDLE;
	for (i = 1; i < argc; i++)
		args[n++] = argv[i];

	/* Said plainly here rather than as node's "Cannot find module" stack trace. */
	if (access(SKIFF_CORE_BUNDLE, R_OK) != 0) {
		fprintf(stderr, "skiff-core: cannot read %s: %s (skiff-core is not installed correctly)\n", SKIFF_CORE_BUNDLE,
			strerror(errno));
		return 127;
	}
	execve(SKIFF_CORE_NODE, args, env);
	fprintf(stderr, "skiff-core: cannot run %s: %s\n", SKIFF_CORE_NODE, strerror(errno));
	return 127;
}
