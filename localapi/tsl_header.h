/* Header value encoding identical to tailscale serve's encTailscaleHeaderValue:
 * printable ASCII (plus tab) passes unchanged, invalid UTF-8 becomes "", any
 * other value becomes RFC 2047 Q encoded-words ("=?utf-8?q?...?="). */
#ifndef TSL_HEADER_H
#define TSL_HEADER_H

#include <apr_pools.h>

/* Encode value for a Tailscale-User-* / Tailscale-App-Capabilities header. */
const char *tsl_header_encode(apr_pool_t *p, const char *value);

/* True if s is valid UTF-8. */
int tsl_utf8_valid(const char *s);

#endif
