/* mod_authnz_tailscale: which Tailscale Service a connection reached.
 *
 * A node hosting Tailscale Services receives each service's connections on
 * the service's VIP.  tailscaled's status lists the hosted services and
 * their VIPs (Self.CapMap["service-host"]); this keeps that list per process
 * and socket, asked again at most every AZT_SERVICES_REFRESH while requests
 * need it.  Thread-safe.
 */
#ifndef AZT_SERVICES_H
#define AZT_SERVICES_H

#include <httpd.h>
#include "tsl_client.h"
#include "azt_breaker.h"

typedef struct azt_services azt_services;

/* The list for the tailscaled at path, asked through client; it is not
 * asked while breaker is open.  Lives as long as p. */
azt_services *azt_services_create(apr_pool_t *p, const char *path, tsl_client *client,
                                  azt_breaker *breaker);

/* The service ("svc:web") whose VIP is dst (a normalised tailnet address),
 * in r's pool; NULL when dst is no hosted service's VIP or the list is not
 * known. */
const char *azt_services_at(azt_services *sv, request_rec *r, const char *dst);

#endif
