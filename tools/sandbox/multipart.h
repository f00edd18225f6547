/*
 * multipart.h - multipart/form-data (RFC 7578) bodies, read into form fields.
 *
 * The parser does no I/O: it takes the whole body (already capped by the
 * server's request body limit) and checks every offset against its length.
 * Only plain fields are accepted: a part with a filename, a part without a
 * Content-Disposition form-data name, or a part with a Content-Type other
 * than text/plain is refused with a reason.
 */
#ifndef SB_MULTIPART_H
#define SB_MULTIPART_H

#include <stddef.h>

#include "form.h"
#include "util.h"

/* RFC 2046: a boundary is 1..70 characters. */
#define SB_BOUNDARY_MAX 70
/* Bytes of headers one part may carry. */
#define SB_PART_HEADERS_MAX 1024

/* Read the boundary parameter of a multipart/form-data Content-Type value
 * (quoted or not) into out.  Returns 0, or -EINVAL with a reason (not
 * multipart/form-data, no boundary, bad boundary). */
int sb_multipart_boundary(const char *content_type, char out[SB_BOUNDARY_MAX + 1], sb_why *why);

/* Parse body[0..len) delimited by boundary into out (zeroed first).
 * Returns 0, -EINVAL with a reason, or -ENOMEM.  On error out is empty. */
int sb_multipart_parse(const char *body, size_t len, const char *boundary, sb_fields *out,
                       sb_why *why);

#endif
