/* Growable byte buffers and session frames, for the login client (login.c). */
#ifndef SKIFF_CORE_BUF_H
#define SKIFF_CORE_BUF_H

#include <stddef.h>

struct buf {
	unsigned char *p;
	size_t len, cap;
};

/* Says so and ends the process. */
void die_oom(void);
/* Appends `n` bytes; out of memory ends the process (a login has nothing to save). */
void buf_add(struct buf *b, const void *data, size_t n);
/* Removes the first `n` bytes (n <= len). */
void buf_drop(struct buf *b, size_t n);
void buf_str(struct buf *b, const char *s);
/* Appends a frame of src/session/frames.ts: [type u8][length u32 BE][payload]. */
void frame_add(struct buf *b, int type, const void *data, size_t n);

#endif
