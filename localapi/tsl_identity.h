/* The identity tailscaled reports for a peer (whois): the node and the user
 * that owns it, its tags and its app-capability grants.
 */
#ifndef TSL_IDENTITY_H
#define TSL_IDENTITY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "tsl_result.h"

#define TSL_TAGGED_LOGIN "tagged-devices"

/* One top-level "key": scalar pair of a capability value object; the scalar is
 * the JSON string's content, or the JSON text of a number/true/false/null. */
typedef struct tsl_cap_field {
    const char *key;
    const char *value;
} tsl_cap_field;

/* One value of a capability grant. */
typedef struct tsl_cap_value {
    const char *json;                 /* compact JSON of the value */
    apr_array_header_t *fields;       /* of tsl_cap_field; scalar members and
                                       * string elements of array members */
} tsl_cap_value;

/* One granted capability. */
typedef struct tsl_cap {
    const char *name;                 /* e.g. "example.com/cap/web" */
    const char *values_json;          /* compact JSON array, or "null" */
    apr_array_header_t *values;       /* of tsl_cap_value */
} tsl_cap;

typedef struct tsl_identity {
    /* UserProfile */
    apr_int64_t user_id;
    const char *login_name;        /* "alice@example.com"; "tagged-devices" for tags */
    const char *display_name;      /* may be "" */
    const char *profile_pic_url;   /* "" when absent */
    apr_array_header_t *groups;    /* of const char*: UserProfile.Groups ("group:eng",
                                    * "eng@example.com"); empty unless this node
                                    * has the tailscale.com/see-groups attribute */
    const char *groups_json;       /* groups as a compact JSON array ("[]" if none),
                                    * made once here, not per request */
    /* Node */
    apr_int64_t node_id;
    const char *node_stable_id;
    const char *node_name;         /* FQDN without trailing dot */
    const char *node_short;        /* ComputedName (MagicDNS short name) */
    const char *tailnet;           /* MagicDNS suffix ("tail1234.ts.net"), "" for
                                    * shared-in nodes whose name is withheld */
    apr_array_header_t *tags;      /* of const char*, e.g. "tag:ci"; empty if none */
    const char *tags_json;         /* tags as a compact JSON array ("[]" if none) */
    apr_array_header_t *addresses; /* of const char*, CIDR strings as sent */
    int is_tagged;                 /* Node.Tags non-empty */
    int is_shared_in;              /* Sharer set, or name outside our tailnet */
    /* CapMap */
    const char *capmap_json;       /* compact JSON object, or NULL for null */
    apr_array_header_t *caps;      /* of tsl_cap */
} tsl_identity;

/* Parse a whois JSON body into an identity allocated from p. Fails with
 * TSL_ERR_PARSE (and a reason) if Node or UserProfile is missing or malformed. */
tsl_code tsl_identity_parse(apr_pool_t *p, const char *json, apr_size_t len,
                            tsl_identity **out, tsl_result *res);

/* Deep copy into p (for caches that outlive the request). */
tsl_identity *tsl_identity_copy(apr_pool_t *p, const tsl_identity *id);

/* The capability named name, or NULL. */
const tsl_cap *tsl_identity_cap(const tsl_identity *id, const char *name);

/* True if the identity holds capability name and, when field is non-NULL, one
 * of its values has field == value (string compare of the scalar, or any
 * string element of an array field). */
int tsl_identity_has_cap(const tsl_identity *id, const char *name,
                         const char *field, const char *value);

/* True if the identity carries tag (e.g. "tag:ci"). */
int tsl_identity_has_tag(const tsl_identity *id, const char *tag);

/* True if the identity's user is in group (exact name). */
int tsl_identity_has_group(const tsl_identity *id, const char *group);

/* Compact JSON of CapMap restricted to the given names (array of const char*);
 * "{}" when none match; NULL when the peer has no caps at all. */
const char *tsl_identity_caps_filtered(apr_pool_t *p, const tsl_identity *id,
                                       const apr_array_header_t *names);

/* A list of strings (groups, tags) as a compact JSON array, each element
 * escaped as Go's encoding/json does: no element can break the list. */
const char *tsl_json_string_list(apr_pool_t *p, const apr_array_header_t *list);

/* Fields tsl_identity_clean() dropped, as bits. */
#define TSL_FIELD_LOGIN        0x01
#define TSL_FIELD_DISPLAY_NAME 0x02
#define TSL_FIELD_PROFILE_PIC  0x04
#define TSL_FIELD_NODE_NAME    0x08
#define TSL_FIELD_NODE_SHORT   0x10
#define TSL_FIELD_TAILNET      0x20
#define TSL_FIELD_NODE_ID      0x40
#define TSL_FIELD_TAGS         0x80
#define TSL_FIELD_GROUPS       0x100

/* Drop every string field (and tag) holding a control character (C0 or
 * DEL): it becomes "" (a tag is removed), so that nothing exported from the
 * identity can split a header, an environment entry or a log line. Returns
 * the TSL_FIELD_* bits of what was dropped (0: nothing). */
unsigned tsl_identity_clean(tsl_identity *id);

/* The whois JSON name of one TSL_FIELD_* bit, for messages. */
const char *tsl_identity_field_name(unsigned bit);

#endif
