/*
 * xmlcheck.h - a strict check of the one XML document the sandbox accepts,
 * Intronis's cancellation body:
 *
 *   [<?xml ...?>]
 *   <cancellation>
 *     <reason_id>N</reason_id>
 *     <reason_note>text</reason_note>   or   <reason_note/>
 *   </cancellation>
 *
 * Children in either order, each exactly once; blanks between elements;
 * entities &amp; &lt; &gt; &quot; &apos; &#N; &#xH; in the note.  Not a
 * general XML parser: attributes, comments, CDATA, DOCTYPE and namespaces are
 * refused with a reason, which is stricter than the vendor but never looser.
 * No I/O; every read is bounded by len.
 */
#ifndef SB_XMLCHECK_H
#define SB_XMLCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Check body[0..len).  Returns 0 and stores the reason id, or -EINVAL with
 * a reason. */
int sb_xml_cancellation(const char *body, size_t len, int64_t *reason_id, sb_why *why);

#endif
