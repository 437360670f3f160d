/* The native login client (login.c) and the descriptor hand-off helper (handoff.c). */
#ifndef SKIFF_CORE_LOGIN_H
#define SKIFF_CORE_LOGIN_H

/*
 * A mapped user's session: connects to the daemon's socket for this user, shows setup progress,
 * then relays the exec the daemon hands over. `command` is `-c CMD`'s CMD, or NULL for a login.
 * Returns the exit status for the SSH client.
 */
int skiff_login(const char *command);

/*
 * The daemon's helper: sends descriptor 4 over the Unix socket on descriptor 3 (SCM_RIGHTS),
 * inside an empty "fd" frame. Node.js cannot send a descriptor itself.
 */
int skiff_handoff(void);

#endif
