/*
 * The little JSON the login client needs: it writes its hello (escaping strings) and reads the
 * daemon's flat control objects, which JSON.stringify writes without spaces.
 */
#ifndef SKIFF_CORE_JSON_H
#define SKIFF_CORE_JSON_H

#include <stddef.h>

#include "buf.h"

/* Appends `s` as a JSON string (quotes included). */
void json_escape(struct buf *b, const char *s);
/* The value after "key": in a flat object, or NULL. */
const char *json_field(const char *json, const char *key);
/* Decodes the JSON string at `p` into `out` (cut to `cap` - 1 bytes); 0 if `p` is no string. */
int json_string(const char *p, char *out, size_t cap);

#endif
