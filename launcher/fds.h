/* Descriptors over Unix sockets (SCM_RIGHTS): the hand-off helper sends, the login client receives. */
#ifndef SKIFF_CORE_FDS_H
#define SKIFF_CORE_FDS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads up to `size` bytes from `sock` and the descriptors that came with them: up to `max` into
 * `fds` (how many in *count), any others closed. Returns what recvmsg returned.
 */
ssize_t recv_with_fds(int sock, void *data, size_t size, int *fds, size_t max, size_t *count);

/* Sends `size` bytes with `fd` attached, without waiting. Returns what sendmsg returned. */
ssize_t send_with_fd(int sock, const void *data, size_t size, int fd);

#endif
