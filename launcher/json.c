/* The login client's JSON (json.h). */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <string.h>

#include "json.h"

void json_escape(struct buf *b, const char *s)
{
	char esc[8];

	buf_str(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			buf_add(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_str(b, esc);
		} else {
			buf_add(b, &c, 1);
		}
	}
	buf_str(b, "\"");
}

/* The value after "key": in a flat object (JSON.stringify writes no spaces), or NULL. */
const char *json_field(const char *json, const char *key)
{
	char pattern[64];
	const char *p;

	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	p = strstr(json, pattern);
	return p ? p + strlen(pattern) : NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static unsigned long hex4(const char *p)
{
	unsigned long v = 0;
	int i, h;

	for (i = 0; i < 4; i++) {
		h = hexval(p[i]);
		if (h < 0)
			return 0xfffd;
		v = v * 16 + (unsigned long)h;
	}
	return v;
}

/* Decodes the JSON string at `p` into `out` (cut to `cap` - 1 bytes); 0 if `p` is no string. */
int json_string(const char *p, char *out, size_t cap)
{
	size_t n = 0;
	char tmp[4];
	size_t k;

	if (p == NULL || *p != '"' || cap == 0)
		return 0;
	for (p++; *p && *p != '"'; p++) {
		size_t len = 1;

		tmp[0] = *p;
		if (*p == '\\' && p[1]) {
			p++;
			switch (*p) {
			case 'n':
				tmp[0] = '\n';
				break;
			case 'r':
				tmp[0] = '\r';
				break;
			case 't':
				tmp[0] = '\t';
				break;
			case 'b':
				tmp[0] = '\b';
				break;
			case 'f':
				tmp[0] = '\f';
				break;
			case 'u': {
				unsigned long cp;

				if (strnlen(p + 1, 4) < 4)
					return 0;
				cp = hex4(p + 1);
				p += 4;
				if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' && p[2] == 'u' && strnlen(p + 3, 4) == 4) {
					unsigned long lo = hex4(p + 3);

					if (lo >= 0xdc00 && lo < 0xe000) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						p += 6;
					}
				}
				if (cp >= 0xd800 && cp < 0xe000)
					cp = 0xfffd;
				len = put_utf8(tmp, cp);
				break;
			}
			default:
				tmp[0] = *p;
				break;
			}
		}
		for (k = 0; k < len && n + 1 < cap; k++)
			out[n++] = tmp[k];
	}
	out[n] = '\0';
	return 1;
}
