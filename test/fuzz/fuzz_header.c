/* Fuzz target: header value encoding (tsl_header_encode, tsl_utf8_valid),
 * the encoding tailscale serve uses for Tailscale-User-* headers.
 *
 * Invariants:
 *  - tsl_utf8_valid agrees with an independent decoder (shortest form, no
 *    surrogates, nothing above U+10FFFF);
 *  - invalid UTF-8 encodes to "";
 *  - printable ASCII (and tab) passes unchanged;
 *  - anything else becomes RFC 2047 encoded-words separated by one space:
 *    each is "=?utf-8?q?" + text + "?=", at most 75 characters, the text
 *    holds only Q-literal characters, "_" and "=XX" (upper-case hex), each
 *    word decodes to valid UTF-8 by itself (no rune split across words),
 *    and the concatenated decoding equals the input;
 *  - the output is printable ASCII, never holds CR/LF.
 */
#include <stdlib.h>
#include <string.h>
#include "tsl_header.h"
#include "fuzz_common.h"

#define OPEN "=?utf-8?q?"
#define CLOSE "?="

/* Independent UTF-8 check: decode each sequence to a code point. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], cp, len, k, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + len > n) return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;   /* lower case is not what Go writes */
}

static int q_literal(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '=' && c != '?' && c != '_';
}

/* Check the encoded-word form of enc and decode it into out (capacity
 * enough: the decoding is never longer than enc). Returns decoded length. */
static size_t decode_words(const char *enc, unsigned char *out)
{
    const char *w = enc;
    size_t o = 0;

    for (;;) {
        const char *end, *t;
        size_t word_start = o;

        FZ_CHECK(strncmp(w, OPEN, strlen(OPEN)) == 0, "word does not start with %s: %s", OPEN, w);
        end = strstr(w + strlen(OPEN), CLOSE);
        FZ_CHECK(end != NULL, "word not closed: %s", w);
        FZ_CHECK((size_t)(end + 2 - w) <= 75, "word longer than 75: %.*s", (int)(end + 2 - w), w);
        FZ_CHECK(end > w + strlen(OPEN), "empty encoded word in %s", enc);
        for (t = w + strlen(OPEN); t < end; t++) {
            if (*t == '_') {
                out[o++] = ' ';
            }
            else if (*t == '=') {
                int hi = hexdigit(t[1]), lo = hi < 0 ? -1 : hexdigit(t[2]);
                FZ_CHECK(hi >= 0 && lo >= 0 && t + 2 < end, "bad =XX in %s", w);
                out[o++] = (unsigned char)(hi * 16 + lo);
                t += 2;
            }
            else {
                FZ_CHECK(q_literal((unsigned char)*t), "character 0x%02x not allowed in %s",
                         (unsigned char)*t, w);
                out[o++] = (unsigned char)*t;
            }
        }
        FZ_CHECK(utf8_ok(out + word_start, o - word_start), "word splits a rune: %.*s",
                 (int)(end + 2 - w), w);
        w = end + 2;
        if (*w == '\0') {
            return o;
        }
        FZ_CHECK(*w == ' ' && w[1] == '=', "words not separated by one space: %s", enc);
        w++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_begin();
    char *value = fz_cstr(data, size);
    size_t n = strlen(value);
    int valid = utf8_ok((const unsigned char *)value, n);
    const char *enc;

    FZ_CHECK(tsl_utf8_valid(value) == valid, "tsl_utf8_valid disagrees (%d)", valid);
    enc = tsl_header_encode(p, value);
    FZ_CHECK(enc != NULL, "NULL encoding");
    FZ_CHECK(fz_printable(enc), "output not printable: %s", enc);
    if (!valid) {
        FZ_CHECK(*enc == '\0', "invalid UTF-8 not dropped: %s", enc);
    }
    else if (fz_printable(value)) {
        FZ_CHECK(strcmp(enc, value) == 0, "printable value changed: %s -> %s", value, enc);
    }
    else {
        unsigned char *dec = malloc(strlen(enc) + 1);
        size_t dn;
        FZ_CHECK(dec != NULL, "out of memory");
        FZ_CHECK(!strchr(enc, '\t'), "tab left in an encoded value: %s", enc);
        dn = decode_words(enc, dec);
        FZ_CHECK(dn == n && memcmp(dec, value, n) == 0, "decoding differs from the input");
        free(dec);
    }
    FZ_CHECK(tsl_header_encode(p, NULL)[0] == '\0', "NULL not encoded as empty");
    free(value);
    fz_end(p);
    return 0;
}
