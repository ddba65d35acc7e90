/*
 * vmctl/http.c: one HTTP request over libcurl (the only file that includes it).
 *
 * A request is synchronous: set up an easy handle, collect the body into a
 * growing buffer and the few headers vmctl acts on (Retry-After,
 * Azure-AsyncOperation, Location, WWW-Authenticate), perform, return the
 * status. Security rules live here so no caller can forget them: peer and host
 * verification are never turned off, and credentials only travel over https
 * (or to loopback for the tests' fake server). Redirects are not followed, so
 * a token never leaves for another host.
 */
#include "http.h"
#include "provider.h"

#include <curl/curl.h>
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_MAX_BODY (16 * 1024 * 1024)

static pthread_once_t http_once = PTHREAD_ONCE_INIT;

static void http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_sink {
	struct http_response *resp;
	size_t cap;
	int too_big;
};

static size_t http_on_body(char *data, size_t size, size_t nmemb, void *p)
{
	struct http_sink *s = p;
	struct http_response *r = s->resp;
	size_t n = size * nmemb;

	if (r->len + n > HTTP_MAX_BODY) {
		s->too_big = 1;
		return 0;
	}
	if (r->len + n + 1 > s->cap) {
		size_t cap = (r->len + n + 1) * 2;
		char *b = realloc(r->body, cap);

		if (!b)
			return 0;
		r->body = b;
		s->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = 0;
	return n;
}

/* Copy the value of header line @line into @dst if its name is @name. */
static void http_header_pick(const char *line, size_t n, const char *name, char *dst,
			     size_t dstlen)
{
	size_t nl = strlen(name), vl;
	const char *v;

	if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return;
	v = line + nl + 1;
	n -= nl + 1;
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	vl = n < dstlen - 1 ? n : dstlen - 1;
	memcpy(dst, v, vl);
	dst[vl] = 0;
}

static size_t http_on_header(char *line, size_t size, size_t nmemb, void *p)
{
	struct http_sink *s = p;
	struct http_response *r = s->resp;
	size_t n = size * nmemb;

	if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* a new response (e.g. after 100 Continue): forget older headers */
		r->retry_after[0] = r->async_operation[0] = r->location[0] = 0;
		r->www_authenticate[0] = 0;
	}
	http_header_pick(line, n, "Retry-After", r->retry_after, sizeof(r->retry_after));
	http_header_pick(line, n, "Azure-AsyncOperation", r->async_operation,
			 sizeof(r->async_operation));
	http_header_pick(line, n, "Location", r->location, sizeof(r->location));
	http_header_pick(line, n, "WWW-Authenticate", r->www_authenticate,
			 sizeof(r->www_authenticate));
	return n;
}

/* The host part of @url, lowercase, brackets kept off. */
static void http_url_host(const char *url, char *host, size_t len)
{
	const char *p = strstr(url, "://"), *end;
	size_t n;

	host[0] = 0;
	if (!p)
		return;
	p += 3;
	end = p + strcspn(p, "/?#");
	{
		const char *at = memchr(p, '@', (size_t)(end - p));

		if (at)
			p = at + 1;
	}
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (!rb)
			return;
		p++;
		end = rb;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (colon)
			end = colon;
	}
	n = (size_t)(end - p);
	if (n >= len)
		n = len - 1;
	for (size_t i = 0; i < n; i++)
		host[i] = (char)tolower((unsigned char)p[i]);
	host[n] = 0;
}

int http_url_secure(const char *url)
{
	char host[256];

	if (!strncasecmp(url, "https://", 8))
		return 1;
	if (strncasecmp(url, "http://", 7))
		return 0;
	http_url_host(url, host, sizeof(host));
	return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost");
}

long http_retry_after(const char *v)
{
	char *end;
	long n;

	if (!v || !*v)
		return -1;
	if (isdigit((unsigned char)*v)) {
		n = strtol(v, &end, 10);
		while (*end == ' ')
			end++;
		return *end || n < 0 ? -1 : n;
	}
	n = (long)curl_getdate(v, NULL);
	if (n < 0)
		return -1;
	n -= (long)time(NULL);
	return n < 0 ? 0 : n;
}

char *http_escape(const char *s)
{
	char *e, *copy;

	pthread_once(&http_once, http_global_init);
	e = curl_easy_escape(NULL, s, 0);
	if (!e)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}

/* Only the path of a URL goes to the debug log: query strings may carry anything. */
static void http_debug_url(const char *method, const char *url)
{
	size_t n = strcspn(url, "?");

	vm_debugf("%s %.*s%s", method, (int)n, url, url[n] ? "?..." : "");
}

int http_request(const struct http_request *req, struct http_response *resp,
		 struct vm_error *err)
{
	struct http_sink sink = { resp, 0, 0 };
	struct curl_slist *hdrs = NULL;
	char *auth = NULL, ctype[128], errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = NULL;
	CURLcode cc;
	int rc = 0;

	memset(resp, 0, sizeof(*resp));
	if ((req->bearer || req->body_is_secret) && !http_url_secure(req->url)) {
		char host[256];

		http_url_host(req->url, host, sizeof(host));
		rc = vm_error_set(err, VM_EHTTP, 0, "insecure",
				  "refusing to send credentials over plain http to '%s' "
				  "(use an https:// endpoint)", host);
		goto out;
	}
	pthread_once(&http_once, http_global_init);
	c = curl_easy_init();
	if (!c) {
		rc = vm_error_set(err, VM_EHTTP, 0, "curl", "cannot initialise libcurl");
		goto out;
	}
	http_debug_url(req->method, req->url);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, req->timeout_s ? req->timeout_s : 60L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
			 req->connect_timeout_s ? req->connect_timeout_s : 15L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "wakefs-vmctl/" WAKEFS_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);
	if (req->ca_bundle && *req->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_bundle);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (req->metadata_header)
		hdrs = curl_slist_append(hdrs, "Metadata: true");
	if (req->bearer) {
		if (asprintf(&auth, "Authorization: Bearer %s", req->bearer) < 0) {
			auth = NULL;
			rc = vm_error_set(err, VM_EHTTP, 0, "nomem", "out of memory");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (req->body || !strcmp(req->method, "POST") || !strcmp(req->method, "PUT")) {
		const char *body = req->body ? req->body : "";

		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/json");
		hdrs = curl_slist_append(hdrs, ctype);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		rc = vm_error_set(err, VM_EHTTP, 0, "transport", "%s %s: %s", req->method,
				  req->url, sink.too_big ? "response larger than 16 MiB" :
				  errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	vm_debugf("-> %ld (%zu bytes)", resp->status, resp->len);
out:
	if (!resp->body)
		resp->body = calloc(1, 1);
	curl_slist_free_all(hdrs);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (c)
		curl_easy_cleanup(c);
	return rc;
}

void http_response_release(struct http_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}
