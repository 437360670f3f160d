/* Growable byte buffers and session frames (buf.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

void die_oom(void)
{
	static const char msg[] = "skiff-core: out of memory\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) { /* nothing else to do */
	}
	_exit(255);
}

void buf_add(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			die_oom();
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void buf_drop(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void frame_add(struct buf *b, int type, const void *data, size_t n)
{
	unsigned char h[5] = { (unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
			       (unsigned char)n };

	buf_add(b, h, sizeof(h));
	if (n)
		buf_add(b, data, n);
}
