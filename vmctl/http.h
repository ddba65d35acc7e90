/*
 * vmctl/http.h: one HTTP request, the way vmctl needs it.
 *
 * The only interface to libcurl. TLS verification is always on (a CA bundle
 * may be given); a bearer token or a secret in the body is sent over plain
 * http only to a loopback host (127.0.0.1, ::1, localhost), otherwise the
 * request is refused. Nothing secret is ever logged: --debug shows the method,
 * the URL and the status only.
 *
 * Ownership: the caller owns the struct http_response and releases it with
 * http_response_release().
 */
#ifndef WAKEFS_HTTP_H
#define WAKEFS_HTTP_H

#include <stddef.h>

struct vm_error;

struct http_request {
	const char *method;		/* "GET", "POST", "PUT", "DELETE", "PATCH" */
	const char *url;
	const char *bearer;		/* Authorization: Bearer ..., or NULL */
	const char *body;		/* NULL = no body (POST sends an empty one) */
	const char *content_type;	/* default application/json when body given */
	int body_is_secret;		/* the body holds a secret: loopback-only over http */
	int metadata_header;		/* add "Metadata: true" (IMDS) */
	long timeout_s;			/* whole request; 0 = 60 */
	long connect_timeout_s;		/* 0 = 15 */
	const char *ca_bundle;		/* NULL = system default */
};

struct http_response {
	long status;
	char *body;			/* NUL-terminated; may be "" */
	size_t len;
	char retry_after[64];		/* header values, "" if absent */
	char async_operation[2048];
	char location[2048];
	char www_authenticate[512];
};

/*
 * Perform @req. Returns 0 when an HTTP response arrived (any status), or
 * VM_EHTTP (transport failure, refused insecure request) with @err filled.
 */
int http_request(const struct http_request *req, struct http_response *resp,
		 struct vm_error *err);
void http_response_release(struct http_response *resp);

/* Is @url https, or http to a loopback host? */
int http_url_secure(const char *url);

/* Retry-After (seconds or an HTTP date) in seconds; -1 when absent or bad. */
long http_retry_after(const char *value);

/* Percent-encode @s for a form body or query string into a new string (caller frees). */
char *http_escape(const char *s);

#endif
