/* mod_md_tailscale: what mod_ssl gets.
 *
 * Before mod_ssl's post_config: for every domain, the stored certificate if
 * it is usable; on the first real start, a bounded wait for tailscaled
 * (MDTailscaleStartupWait) in case it already holds one; otherwise a
 * self-signed fallback.  mod_ssl then asks through its ssl_add_cert_files /
 * ssl_add_fallback_cert_files hooks for every vhost with SSLEngine on, and
 * vhosts whose ServerName/ServerAlias is a managed name get the files.
 * Requests on a vhost serving the fallback are answered 503 with a short
 * explanation until the real certificate is activated.
 */
#ifndef MDT_SSL_H
#define MDT_SSL_H

#include <httpd.h>

/* post_config, before mod_ssl. */
int mdt_ssl_prepare(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);

/* post_config, after mod_ssl: report unused domains, start the helper. */
int mdt_ssl_after(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);

/* mod_ssl's optional hooks. */
int mdt_ssl_add_cert_files(server_rec *s, apr_pool_t *p,
                           apr_array_header_t *cert_files,
                           apr_array_header_t *key_files);
int mdt_ssl_add_fallback_cert_files(server_rec *s, apr_pool_t *p,
                                    apr_array_header_t *cert_files,
                                    apr_array_header_t *key_files);

/* post_read_request: 503 with an explanation on fallback vhosts. */
int mdt_ssl_fallback_503(request_rec *r);

#endif
