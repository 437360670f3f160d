/* SSH agent forwarding into a container: the socket (hand-off helper) and the relay (login client). */
#ifndef SKIFF_CORE_AGENT_H
#define SKIFF_CORE_AGENT_H

/*
 * Makes /tmp/NAME/agent.sock listening inside the container whose init is host PID `pid`, the
 * directory (0700) and socket (0600) owned by uid:gid. Returns NULL and the listener in *out, or
 * why not (and leaves nothing behind).
 */
const char *agent_listen(long pid, long uid, long gid, const char *name, int *out);

/* Accepts one connection on `listener` and relays it to $SSH_AUTH_SOCK in a child process. */
void agent_accept(int listener);

/* Collects relay children that have finished. */
void agent_reap(void);

/*
 * "skiff-core-agent-relay PID UID GID DIR SOCKET", started by the daemon for a session of its SSH
 * gateway: makes the container's socket as agent_listen does, says "ready", then relays each
 * connection to SOCKET (the daemon's, which passes it to the SSH client) until stdin closes.
 */
int skiff_agent_relay(int argc, char **argv);

#endif
