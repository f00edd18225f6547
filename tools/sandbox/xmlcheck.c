/*
 * xmlcheck.c - see xmlcheck.h.
 */
#include "xmlcheck.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Longest element name we read before calling it unknown. */
#define SB_XML_NAME_MAX 32

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static bool eat(cursor *c, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == ':';
}

/* Read an element name after '<' or '</'. */
static int read_name(cursor *c, char name[SB_XML_NAME_MAX + 1], sb_why *why)
{
    size_t n = 0;

    while (c->p < c->end && name_char(*c->p)) {
        if (n >= SB_XML_NAME_MAX)
            return sb_why_set(why, "XML element name too long");
        name[n++] = *c->p++;
    }
    name[n] = '\0';
    return n == 0 ? sb_why_set(why, "XML: expected an element name") : 0;
}

/* After an element name: blanks then '>' (or "/>" when allowed).  Sets
 * *empty for "/>".  Anything else is an attribute, which is refused. */
static int end_of_tag(cursor *c, const char *name, bool allow_empty, bool *empty, sb_why *why)
{
    skip_ws(c);
    *empty = false;
    if (eat(c, ">"))
        return 0;
    if (allow_empty && eat(c, "/>")) {
        *empty = true;
        return 0;
    }
    return sb_why_set(why, "XML: unexpected attribute or junk in <%s>", name);
}

static int close_tag(cursor *c, const char *name, sb_why *why)
{
    char got[SB_XML_NAME_MAX + 1];
    bool empty;

    if (!eat(c, "</") || read_name(c, got, NULL) != 0 || strcmp(got, name) != 0)
        return sb_why_set(why, "XML: expected </%s>", name);
    return end_of_tag(c, name, false, &empty, why);
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* If p starts "&#digits;" or "&#xhex;" (at most 8 digits), the position after
 * it; else NULL. */
static const char *char_ref_end(const char *p, const char *end)
{
    bool hex;
    size_t n = 0;

    if (end - p < 4 || p[0] != '&' || p[1] != '#')
        return NULL;
    p += 2;
    hex = *p == 'x';
    if (hex)
        p++;
    for (; p < end && n <= 8 && (hex ? is_hex(*p) : (*p >= '0' && *p <= '9')); p++)
        n++;
    if (n == 0 || n > 8 || p >= end || *p != ';')
        return NULL;
    return p + 1;
}

/* Character data up to the next '<': entity references must be valid. */
static int text(cursor *c, const char **start, size_t *len, sb_why *why)
{
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    const char *p;
    size_t i;

    *start = c->p;
    while (c->p < c->end && *c->p != '<') {
        if (*c->p == '>' && c->p - *start >= 2 && memcmp(c->p - 2, "]]", 2) == 0)
            return sb_why_set(why, "XML: \"]]>\" in text");
        if (*c->p != '&') {
            c->p++;
            continue;
        }
        for (i = 0; i < SB_ARRAY_LEN(ents); i++) {
            if (eat(c, ents[i]))
                break;
        }
        if (i < SB_ARRAY_LEN(ents))
            continue;
        p = char_ref_end(c->p, c->end);
        if (p != NULL) {
            c->p = p;
            continue;
        }
        return sb_why_set(why, "XML: bad entity reference in text");
    }
    *len = (size_t)(c->p - *start);
    return 0;
}

static int reason_id_elem(cursor *c, int64_t *reason_id, sb_why *why)
{
    const char *s = NULL;
    size_t n = 0;
    bool empty;
    int rc;

    rc = end_of_tag(c, "reason_id", false, &empty, why);
    if (rc == 0)
        rc = text(c, &s, &n, why);
    if (rc != 0)
        return rc;
    while (n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (sb_parse_int(s, n, INT32_MIN, INT32_MAX, reason_id) != 0)
        return sb_why_set(why, "XML: <reason_id> must be an integer");
    return close_tag(c, "reason_id", why);
}

static int reason_note_elem(cursor *c, sb_why *why)
{
    const char *s = NULL;
    size_t n = 0;
    bool empty;
    int rc;

    rc = end_of_tag(c, "reason_note", true, &empty, why);
    if (rc != 0 || empty)
        return rc;
    rc = text(c, &s, &n, why);
    return rc != 0 ? rc : close_tag(c, "reason_note", why);
}

/* Optional "<?xml ...?>" declaration. */
static int prolog(cursor *c, sb_why *why)
{
    const char *q;

    if (!eat(c, "<?xml"))
        return 0;
    if (c->p >= c->end || !(*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        return sb_why_set(why, "XML: malformed <?xml declaration");
    for (q = c->p; q + 1 < c->end; q++) {
        if (*q == '<' || *q == '>')
            break;
        if (q[0] == '?' && q[1] == '>') {
            c->p = q + 2;
            return 0;
        }
    }
    return sb_why_set(why, "XML: unterminated <?xml declaration");
}

static int children(cursor *c, int64_t *reason_id, sb_why *why)
{
    char name[SB_XML_NAME_MAX + 1];
    bool have_id = false, have_note = false;
    int rc;

    for (;;) {
        skip_ws(c);
        if (c->p < c->end && c->p + 1 < c->end && c->p[0] == '<' && c->p[1] == '/')
            break;
        if (eat(c, "<!--"))
            return sb_why_set(why, "XML comments are not accepted");
        if (eat(c, "<!"))
            return sb_why_set(why, "XML: CDATA and declarations are not accepted");
        if (!eat(c, "<"))
            return sb_why_set(why, "XML: text directly inside <cancellation>");
        rc = read_name(c, name, why);
        if (rc != 0)
            return rc;
        if (strcmp(name, "reason_id") == 0 && !have_id) {
            have_id = true;
            rc = reason_id_elem(c, reason_id, why);
        } else if (strcmp(name, "reason_note") == 0 && !have_note) {
            have_note = true;
            rc = reason_note_elem(c, why);
        } else if (strcmp(name, "reason_id") == 0 || strcmp(name, "reason_note") == 0) {
            rc = sb_why_set(why, "XML: <%s> given twice", name);
        } else {
            rc = sb_why_set(why, "XML: unknown element <%s> (want reason_id, reason_note)", name);
        }
        if (rc != 0)
            return rc;
    }
    if (!have_id)
        return sb_why_set(why, "XML: missing <reason_id>");
    if (!have_note)
        return sb_why_set(why, "XML: missing <reason_note>");
    return 0;
}

int sb_xml_cancellation(const char *body, size_t len, int64_t *reason_id, sb_why *why)
{
    cursor c = {body, body + len};
    char name[SB_XML_NAME_MAX + 1];
    bool empty;
    int rc;

    eat(&c, "\xEF\xBB\xBF"); /* a UTF-8 byte order mark is allowed */
    skip_ws(&c);
    rc = prolog(&c, why);
    if (rc != 0)
        return rc;
    skip_ws(&c);
    if (!eat(&c, "<") || read_name(&c, name, NULL) != 0 || strcmp(name, "cancellation") != 0)
        return sb_why_set(why, "XML: root element must be <cancellation>");
    rc = end_of_tag(&c, "cancellation", false, &empty, why);
    if (rc == 0)
        rc = children(&c, reason_id, why);
    if (rc == 0)
        rc = close_tag(&c, "cancellation", why);
    if (rc != 0)
        return rc;
    skip_ws(&c);
    if (c.p != c.end)
        return sb_why_set(why, "XML: content after </cancellation>");
    return 0;
}
