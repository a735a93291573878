/* tailscale serve's header value encoding (encTailscaleHeaderValue):
 * invalid UTF-8 gives "", printable ASCII and tab pass unchanged, anything
 * else becomes RFC 2047 Q encoded-words the way Go's mime.QEncoding writes
 * them for charset "utf-8". */
#include <string.h>
#include <apr_strings.h>
#include "tsl_header.h"

/* RFC 2047 limits an encoded-word to 75 characters; "=?utf-8?q?" and "?="
 * take 12 of them, leaving 63 for the encoded text. */
#define QWORD_MAX_CONTENT 63
#define QWORD_OPEN "=?utf-8?q?"
#define QWORD_CLOSE "?="

/* Length of the UTF-8 sequence starting at s (1..4), or 0 if it is not a
 * valid, shortest-form encoding of a scalar value (no surrogates, max
 * U+10FFFF), matching Go's utf8.ValidString. */
static int utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (c == 0xe0) {
            lo = 0xa0;        /* overlong */
        }
        else if (c == 0xed) {
            hi = 0x9f;        /* surrogates */
        }
        if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (c == 0xf0) {
            lo = 0x90;        /* overlong */
        }
        else if (c == 0xf4) {
            hi = 0x8f;        /* above U+10FFFF */
        }
        if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80) {
            return 0;
        }
        return 4;
    }
    return 0;
}

int tsl_utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    if (!s) {
        return 0;
    }
    while (*u) {
        /* A NUL terminator inside a sequence fails the continuation test. */
        int n = utf8_seq_len(u);
        if (n == 0) {
            return 0;
        }
        u += n;
    }
    return 1;
}

static int needs_encoding(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    for (; *u; u++) {
        if ((*u < 0x20 || *u > 0x7e) && *u != '\t') {
            return 1;
        }
    }
    return 0;
}

/* Characters written literally inside a Q encoded-word. */
static int q_literal(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '=' && c != '?' && c != '_';
}

const char *tsl_header_encode(apr_pool_t *p, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u;
    size_t n, cap, o = 0, word_len = 0;
    char *out;

    if (!value || !tsl_utf8_valid(value)) {
        return "";
    }
    if (!needs_encoding(value)) {
        return apr_pstrdup(p, value);
    }
    n = strlen(value);
    /* Worst case: every byte as =XX, a word holds at least 52 encoded characters. */
    cap = sizeof(QWORD_OPEN) + 3 * n
          + (n / 16 + 2) * (sizeof(QWORD_OPEN) + sizeof(QWORD_CLOSE) + 1) + 1;
    out = apr_palloc(p, cap);
    memcpy(out, QWORD_OPEN, strlen(QWORD_OPEN));
    o = strlen(QWORD_OPEN);
    for (u = (const unsigned char *)value; *u;) {
        int rune_len, enc_len, i;

        if (*u == ' ' || q_literal(*u)) {
            rune_len = 1;
            enc_len = 1;
        }
        else {
            rune_len = utf8_seq_len(u);   /* >= 1: validated above */
            enc_len = 3 * rune_len;
        }
        if (word_len + (size_t)enc_len > QWORD_MAX_CONTENT) {
            /* close this word, start the next one; runes are never split */
            memcpy(out + o, QWORD_CLOSE " " QWORD_OPEN,
                   strlen(QWORD_CLOSE " " QWORD_OPEN));
            o += strlen(QWORD_CLOSE " " QWORD_OPEN);
            word_len = 0;
        }
        for (i = 0; i < rune_len; i++, u++) {
            if (*u == ' ') {
                out[o++] = '_';
            }
            else if (q_literal(*u)) {
                out[o++] = (char)*u;
            }
            else {
                out[o++] = '=';
                out[o++] = hex[*u >> 4];
                out[o++] = hex[*u & 0x0f];
            }
        }
        word_len += (size_t)enc_len;
    }
    memcpy(out + o, QWORD_CLOSE, strlen(QWORD_CLOSE));
    o += strlen(QWORD_CLOSE);
    out[o] = '\0';
    return out;
}
