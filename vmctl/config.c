/*
 * vmctl/config.c: the INI configuration shared by wakefs and vmctl.
 *
 * The whole file is read into memory and parsed line by line into ordered
 * sections of ordered values; each value keeps its line so that any later
 * check (here or in the modules that use a key) can point at it. Validation
 * happens once, here: a key must be one of the known profile keys, may repeat
 * only if it is repeatable, and keys with a fixed grammar (provider, flush,
 * port, durations, booleans, URLs) are checked as they are read. Values are
 * otherwise kept verbatim (surrounding double quotes removed).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX_BYTES (1024 * 1024)

struct config_section {
	char *name;
	int line;
	struct config_value *values;	/* key/value strings owned */
	size_t nvalues, cap;
};

struct config {
	char *file;			/* NULL for config_new() */
	struct config_section **sections;
	size_t nsections, cap;
};

/* Known profile keys; checker validates the value (NULL = free text). */
typedef int (*config_check_fn)(const char *value, char *why, size_t len);

static int config_check_provider(const char *v, char *why, size_t len);
static int config_check_flush(const char *v, char *why, size_t len);
static int config_check_port(const char *v, char *why, size_t len);
static int config_check_duration(const char *v, char *why, size_t len);
static int config_check_bool(const char *v, char *why, size_t len);
static int config_check_count(const char *v, char *why, size_t len);
static int config_check_url(const char *v, char *why, size_t len);
static int config_check_cloud(const char *v, char *why, size_t len);
static int config_check_forward(const char *v, char *why, size_t len);
static int config_check_time(const char *v, char *why, size_t len);

static const struct config_key {
	const char *name;
	int repeatable;
	config_check_fn check;
} config_keys[] = {
	{ "provider", 0, config_check_provider },
	{ "subscription", 0, NULL },
	{ "resource_group", 0, NULL },
	{ "vm", 0, NULL },
	{ "vm_id", 0, NULL },
	{ "user", 0, NULL },
	{ "port", 0, config_check_port },
	{ "identity", 0, NULL },
	{ "host", 0, NULL },
	{ "remote_dir", 0, NULL },
	{ "local", 0, NULL },
	{ "flush", 0, config_check_flush },
	{ "forward", 1, config_check_forward },
	{ "idle_deallocate", 0, config_check_duration },
	{ "keep_vm", 0, config_check_bool },
	{ "guard_cmd", 0, NULL },
	{ "start_cmd", 0, NULL },
	{ "stop_cmd", 0, NULL },
	{ "status_cmd", 0, NULL },
	{ "address_cmd", 0, NULL },
	{ "command_timeout", 0, config_check_duration },
	{ "cloud", 0, config_check_cloud },
	{ "arm_endpoint", 0, config_check_url },
	{ "authority_host", 0, config_check_url },
	{ "ca_bundle", 0, NULL },
	{ "location", 0, NULL },
	{ "vm_size", 0, NULL },
	{ "image", 0, NULL },
	{ "admin_user", 0, NULL },
	{ "ssh_public_key", 0, NULL },
	{ "autoshutdown_time", 0, config_check_time },
	{ "autoshutdown_tz", 0, NULL },
	{ "watchdog_minutes", 0, config_check_count },
};

static const struct config_key *config_key_find(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (strcmp(config_keys[i].name, key) == 0)
			return &config_keys[i];
	return NULL;
}

int config_key_known(const char *key)
{
	return config_key_find(key) != NULL;
}

int config_key_repeatable(const char *key)
{
	const struct config_key *k = config_key_find(key);

	return k && k->repeatable;
}

/* ---- value grammars ---- */

static int config_check_provider(const char *v, char *why, size_t len)
{
	if (!strcmp(v, "azure") || !strcmp(v, "local") || !strcmp(v, "none") ||
	    !strcmp(v, "command"))
		return 0;
	snprintf(why, len, "unknown provider '%s' (expected azure, local, none, command)", v);
	return -EINVAL;
}

static int config_check_flush(const char *v, char *why, size_t len)
{
	if (!strcmp(v, "tracked") || !strcmp(v, "unignored") || !strcmp(v, "all"))
		return 0;
	snprintf(why, len, "unknown flush policy '%s' (expected tracked, unignored, all)", v);
	return -EINVAL;
}

static int config_parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long n = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		if (n > (max - (unsigned long)(*s - '0')) / 10)
			return -EINVAL;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	*out = n;
	return 0;
}

static int config_check_port(const char *v, char *why, size_t len)
{
	unsigned long n;

	if (config_parse_ulong(v, 65535, &n) == 0 && n > 0)
		return 0;
	snprintf(why, len, "bad port '%s' (expected a number from 1 to 65535)", v);
	return -EINVAL;
}

static int config_check_duration(const char *v, char *why, size_t len)
{
	long s;

	if (config_parse_duration(v, &s) == 0)
		return 0;
	snprintf(why, len, "bad duration '%s' (expected e.g. 90s, 30m, 2h)", v);
	return -EINVAL;
}

static int config_check_bool(const char *v, char *why, size_t len)
{
	int b;

	if (config_parse_bool(v, &b) == 0)
		return 0;
	snprintf(why, len, "bad boolean '%s' (expected yes or no)", v);
	return -EINVAL;
}

static int config_check_count(const char *v, char *why, size_t len)
{
	unsigned long n;

	if (config_parse_ulong(v, INT_MAX, &n) == 0)
		return 0;
	snprintf(why, len, "bad number '%s' (expected a whole number of minutes)", v);
	return -EINVAL;
}

static int config_check_url(const char *v, char *why, size_t len)
{
	if ((!strncmp(v, "https://", 8) && v[8]) || (!strncmp(v, "http://", 7) && v[7]))
		return 0;
	snprintf(why, len, "bad URL '%s' (expected https://HOST[/...])", v);
	return -EINVAL;
}

static int config_check_cloud(const char *v, char *why, size_t len)
{
	if (!strcasecmp(v, "AzureCloud") || !strcasecmp(v, "AzureChinaCloud") ||
	    !strcasecmp(v, "AzureUSGovernment"))
		return 0;
	snprintf(why, len,
		 "unknown cloud '%s' (expected AzureCloud, AzureChinaCloud, AzureUSGovernment, "
		 "or set arm_endpoint and authority_host)", v);
	return -EINVAL;
}

/* "PORT" or "LPORT:HOST:RPORT" (HOST may be [v6]). */
static int config_check_forward(const char *v, char *why, size_t len)
{
	unsigned long n;
	const char *c1 = strchr(v, ':'), *c2 = strrchr(v, ':');
	char buf[16];
	size_t l;

	if (!c1) {
		if (config_parse_ulong(v, 65535, &n) == 0 && n > 0)
			return 0;
		goto bad;
	}
	l = (size_t)(c1 - v);
	if (c1 == c2 || l == 0 || l >= sizeof(buf) || c2 - c1 < 2)
		goto bad;
	memcpy(buf, v, l);
	buf[l] = 0;
	if (config_parse_ulong(buf, 65535, &n) || n == 0)
		goto bad;
	if (config_parse_ulong(c2 + 1, 65535, &n) || n == 0)
		goto bad;
	return 0;
bad:
	snprintf(why, len, "bad forward '%s' (expected PORT or LOCALPORT:HOST:REMOTEPORT)", v);
	return -EINVAL;
}

/* "HHMM" or "HH:MM", 24-hour. */
static int config_check_time(const char *v, char *why, size_t len)
{
	int h, m;
	char extra;

	if ((strlen(v) == 4 && sscanf(v, "%2d%2d%c", &h, &m, &extra) == 2) ||
	    (strlen(v) == 5 && v[2] == ':' && sscanf(v, "%2d:%2d%c", &h, &m, &extra) == 2)) {
		if (isdigit((unsigned char)v[0]) && h >= 0 && h < 24 && m >= 0 && m < 60)
			return 0;
	}
	snprintf(why, len, "bad time '%s' (expected HHMM or HH:MM, 24-hour)", v);
	return -EINVAL;
}

/* ---- parsers ---- */

int config_parse_duration(const char *s, long *seconds)
{
	long total = 0;
	int any = 0;

	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		long n = 0, mult;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s)) {
			if (n > (LONG_MAX - 9) / 10)
				return -EINVAL;
			n = n * 10 + (*s++ - '0');
		}
		switch (*s) {
		case 0:
			if (any)	/* "1h30" is ambiguous */
				return -EINVAL;
			mult = 1;
			break;
		case 's': mult = 1; s++; break;
		case 'm': mult = 60; s++; break;
		case 'h': mult = 3600; s++; break;
		case 'd': mult = 86400; s++; break;
		default:
			return -EINVAL;
		}
		if (n > (LONG_MAX - total) / mult)
			return -EINVAL;
		total += n * mult;
		any = 1;
	}
	*seconds = total;
	return 0;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n = 0, mult = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	while (isdigit((unsigned char)*s)) {
		if (n > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		n = n * 10 + (uint64_t)(*s++ - '0');
	}
	switch (tolower((unsigned char)*s)) {
	case 0: break;
	case 'b': break;
	case 'k': mult = 1ULL << 10; s++; break;
	case 'm': mult = 1ULL << 20; s++; break;
	case 'g': mult = 1ULL << 30; s++; break;
	case 't': mult = 1ULL << 40; s++; break;
	default: return -EINVAL;
	}
	if (*s && strcasecmp(s, "b") && !(mult > 1 && !strcasecmp(s, "ib")))
		return -EINVAL;
	if (n > UINT64_MAX / mult)
		return -EINVAL;
	*bytes = n * mult;
	return 0;
}

int config_parse_bool(const char *s, int *out)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };
	size_t i;

	if (!s)
		return -EINVAL;
	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- storage ---- */

int config_new(struct config **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void config_section_free(struct config_section *sec)
{
	size_t i;

	if (!sec)
		return;
	for (i = 0; i < sec->nvalues; i++) {
		free((char *)sec->values[i].key);
		free((char *)sec->values[i].value);
	}
	free(sec->values);
	free(sec->name);
	free(sec);
}

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->nsections; i++)
		config_section_free(cfg->sections[i]);
	free(cfg->sections);
	free(cfg->file);
	free(cfg);
}

const char *config_file(const struct config *cfg)
{
	return cfg ? cfg->file : NULL;
}

size_t config_section_count(const struct config *cfg)
{
	return cfg ? cfg->nsections : 0;
}

const struct config_section *config_section_at(const struct config *cfg, size_t i)
{
	return cfg && i < cfg->nsections ? cfg->sections[i] : NULL;
}

const struct config_section *config_section(const struct config *cfg, const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->nsections; i++)
		if (strcmp(cfg->sections[i]->name, name) == 0)
			return cfg->sections[i];
	return NULL;
}

const char *config_section_name(const struct config_section *sec)
{
	return sec ? sec->name : NULL;
}

static struct config_section *config_add_section(struct config *cfg, const char *name, int line)
{
	struct config_section *sec;

	if (cfg->nsections == cfg->cap) {
		size_t cap = cfg->cap ? cfg->cap * 2 : 8;
		struct config_section **n = realloc(cfg->sections, cap * sizeof(*n));

		if (!n)
			return NULL;
		cfg->sections = n;
		cfg->cap = cap;
	}
	sec = calloc(1, sizeof(*sec));
	if (!sec)
		return NULL;
	sec->name = strdup(name);
	if (!sec->name) {
		free(sec);
		return NULL;
	}
	sec->line = line;
	cfg->sections[cfg->nsections++] = sec;
	return sec;
}

static int config_add_value(struct config *cfg, struct config_section *sec, const char *key,
			    const char *value, int line)
{
	struct config_value *v;

	if (sec->nvalues == sec->cap) {
		size_t cap = sec->cap ? sec->cap * 2 : 16;
		struct config_value *n = realloc(sec->values, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		sec->values = n;
		sec->cap = cap;
	}
	v = &sec->values[sec->nvalues];
	v->key = strdup(key);
	v->value = strdup(value);
	if (!v->key || !v->value) {
		free((char *)v->key);
		free((char *)v->value);
		return -ENOMEM;
	}
	v->file = cfg->file;
	v->line = line;
	sec->nvalues++;
	return 0;
}

const struct config_value *config_next(const struct config_section *sec, const char *key,
				       const struct config_value *prev)
{
	size_t i;

	if (!sec || !key)
		return NULL;
	i = prev ? (size_t)(prev - sec->values) + 1 : 0;
	for (; i < sec->nvalues; i++)
		if (strcmp(sec->values[i].key, key) == 0)
			return &sec->values[i];
	return NULL;
}

const struct config_value *config_value(const struct config_section *sec, const char *key)
{
	const struct config_value *v = NULL, *last = NULL;

	while ((v = config_next(sec, key, v)))
		last = v;
	return last;
}

const char *config_get(const struct config_section *sec, const char *key)
{
	const struct config_value *v = config_value(sec, key);

	return v ? v->value : NULL;
}

size_t config_count(const struct config_section *sec, const char *key)
{
	const struct config_value *v = NULL;
	size_t n = 0;

	while ((v = config_next(sec, key, v)))
		n++;
	return n;
}

/* ---- messages ---- */

static void config_where(const char *file, int line, char *buf, size_t len)
{
	const char *home = getenv("HOME");
	size_t hl = home ? strlen(home) : 0;

	if (!file)
		file = "(none)";
	if (hl > 1 && strncmp(file, home, hl) == 0 && file[hl] == '/')
		snprintf(buf, len, "config ~%s:%d", file + hl, line);
	else
		snprintf(buf, len, "config %s:%d", file, line);
}

void config_value_where(const struct config_value *v, char *buf, size_t len)
{
	if (!v->line)
		snprintf(buf, len, "option '%s'", v->key);
	else
		config_where(v->file, v->line, buf, len);
}

int config_errorf(char *err, size_t errlen, const struct config_value *v, const char *fmt, ...)
{
	char where[PATH_MAX + 32], msg[512];
	va_list ap;

	if (!err || !errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v) {
		config_value_where(v, where, sizeof(where));
		snprintf(err, errlen, "%s: %s", where, msg);
	} else {
		snprintf(err, errlen, "%s", msg);
	}
	return -EINVAL;
}

static int config_line_error(char *err, size_t errlen, const char *file, int line,
			     const char *msg)
{
	char where[PATH_MAX + 32];

	if (err && errlen) {
		config_where(file, line, where, sizeof(where));
		snprintf(err, errlen, "%s: %s", where, msg);
	}
	return -EINVAL;
}

/* ---- parsing ---- */

static char *config_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static int config_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-@+", *s))
			return 0;
	return 1;
}

/*
 * Validate and store one key = value in @sec. @line 0 = from the program
 * (config_set: a non-repeatable key replaces the existing value).
 */
static int config_store(struct config *cfg, struct config_section *sec, const char *key,
			const char *value, int line, char *err, size_t errlen)
{
	const struct config_key *k = config_key_find(key);
	char why[512];
	const struct config_value *prev;

	if (!k) {
		snprintf(why, sizeof(why), "unknown key '%s' in [%s]", key, sec->name);
		goto bad;
	}
	if (k->check && *value && k->check(value, why, sizeof(why)))
		goto bad;
	prev = config_value(sec, key);
	if (prev && !k->repeatable) {
		if (line) {
			snprintf(why, sizeof(why), "'%s' set twice in [%s] (first on line %d)",
				 key, sec->name, prev->line);
			goto bad;
		}
		char *nv = strdup(value);

		if (!nv)
			return -ENOMEM;
		free((char *)prev->value);
		((struct config_value *)prev)->value = nv;
		((struct config_value *)prev)->line = 0;
		return 0;
	}
	return config_add_value(cfg, sec, key, value, line);
bad:
	if (!line) {
		if (err && errlen)
			snprintf(err, errlen, "option '%s': %s", key, why);
		return -EINVAL;
	}
	return config_line_error(err, errlen, cfg->file, line, why);
}

static int config_parse_line(struct config *cfg, struct config_section **cur, char *s,
			     int line, char *err, size_t errlen)
{
	char *eq, *key, *value, msg[512];
	size_t vl;

	s = config_trim(s);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end || config_trim(end + 1)[0]) {
			snprintf(msg, sizeof(msg), "bad section header '%.100s' (expected [name])", s);
			return config_line_error(err, errlen, cfg->file, line, msg);
		}
		*end = 0;
		s = config_trim(s + 1);
		if (!config_name_ok(s)) {
			snprintf(msg, sizeof(msg),
				 "bad profile name '%.100s' (expected letters, digits, '.', '_', '-')", s);
			return config_line_error(err, errlen, cfg->file, line, msg);
		}
		const struct config_section *dup = config_section(cfg, s);

		if (dup) {
			snprintf(msg, sizeof(msg), "profile [%s] defined twice (first on line %d)",
				 s, dup->line);
			return config_line_error(err, errlen, cfg->file, line, msg);
		}
		*cur = config_add_section(cfg, s, line);
		return *cur ? 0 : -ENOMEM;
	}
	eq = strchr(s, '=');
	if (!eq) {
		snprintf(msg, sizeof(msg), "expected 'key = value' or '[profile]', got '%.100s'", s);
		return config_line_error(err, errlen, cfg->file, line, msg);
	}
	*eq = 0;
	key = config_trim(s);
	value = config_trim(eq + 1);
	vl = strlen(value);
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		value[vl - 1] = 0;
		value++;
	}
	if (!*key)
		return config_line_error(err, errlen, cfg->file, line,
					 "missing key before '='");
	if (!*cur) {
		snprintf(msg, sizeof(msg), "'%.100s' outside a [profile] section", key);
		return config_line_error(err, errlen, cfg->file, line, msg);
	}
	return config_store(cfg, *cur, key, value, line, err, errlen);
}

int config_parse(struct config **out, const char *name, const char *text, char *err,
		 size_t errlen)
{
	struct config *cfg = NULL;
	struct config_section *cur = NULL;
	char *copy = NULL, *p, *nl;
	int line = 0, rc;

	*out = NULL;
	rc = config_new(&cfg);
	if (rc)
		goto out;
	cfg->file = strdup(name ? name : "(memory)");
	copy = strdup(text);
	if (!cfg->file || !copy) {
		rc = -ENOMEM;
		goto out;
	}
	if (strlen(copy) >= 3 && (unsigned char)copy[0] == 0xEF &&
	    (unsigned char)copy[1] == 0xBB && (unsigned char)copy[2] == 0xBF)
		memset(copy, ' ', 3);	/* UTF-8 byte order mark */
	for (p = copy; p; p = nl) {
		nl = strchr(p, '\n');
		if (nl)
			*nl++ = 0;
		line++;
		rc = config_parse_line(cfg, &cur, p, line, err, errlen);
		if (rc)
			goto out;
	}
out:
	free(copy);
	if (rc) {
		if (rc == -ENOMEM && err && errlen)
			snprintf(err, errlen, "out of memory reading the configuration");
		config_free(cfg);
		cfg = NULL;
	}
	*out = cfg;
	return rc;
}

int config_default_path(char *buf, size_t len)
{
	const char *env = getenv("WAKEFS_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/wakefs/config", xdg);
	else
		n = snprintf(buf, len, "%s/.config/wakefs/config", home ? home : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int config_load(struct config **out, const char *path, char *err, size_t errlen)
{
	char def[PATH_MAX], *text = NULL;
	FILE *f = NULL;
	size_t n;
	int rc = 0, explicit = path != NULL;

	*out = NULL;
	if (!path) {
		rc = config_default_path(def, sizeof(def));
		if (rc) {
			if (err && errlen)
				snprintf(err, errlen, "cannot find the configuration: path too long");
			goto out;
		}
		path = def;
		explicit = getenv("WAKEFS_CONFIG") && *getenv("WAKEFS_CONFIG");
	}
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		if (rc == -ENOENT && !explicit) {
			rc = config_new(out);
			if (!rc && !((*out)->file = strdup(path))) {
				config_free(*out);
				*out = NULL;
				rc = -ENOMEM;
			}
			goto out;
		}
		if (err && errlen)
			snprintf(err, errlen, "cannot read config '%s': %s", path, strerror(-rc));
		goto out;
	}
	text = malloc(CONFIG_MAX_BYTES + 1);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	n = fread(text, 1, CONFIG_MAX_BYTES + 1, f);
	if (ferror(f) || n > CONFIG_MAX_BYTES) {
		rc = ferror(f) ? -EIO : -EFBIG;
		if (err && errlen)
			snprintf(err, errlen, "cannot read config '%s': %s", path,
				 rc == -EIO ? "read error" : "larger than 1 MiB");
		goto out;
	}
	text[n] = 0;
	if (strlen(text) != n) {
		rc = config_line_error(err, errlen, path, 1, "contains a NUL byte (not a text file?)");
		goto out;
	}
	rc = config_parse(out, path, text, err, errlen);
out:
	if (f)
		fclose(f);
	free(text);
	return rc;
}

int config_set(struct config *cfg, const char *section, const char *key, const char *value,
	       char *err, size_t errlen)
{
	struct config_section *sec = (struct config_section *)config_section(cfg, section);

	if (!config_name_ok(section)) {
		if (err && errlen)
			snprintf(err, errlen, "bad profile name '%s'", section);
		return -EINVAL;
	}
	if (!sec) {
		sec = config_add_section(cfg, section, 0);
		if (!sec)
			return -ENOMEM;
	}
	return config_store(cfg, sec, key, value, 0, err, errlen);
}

/* ---- typed getters ---- */

int config_get_duration(const struct config_section *sec, const char *key, long def, long *out,
			char *err, size_t errlen)
{
	const struct config_value *v = config_value(sec, key);

	*out = def;
	if (!v || !*v->value)
		return 0;
	if (config_parse_duration(v->value, out))
		return config_errorf(err, errlen, v, "bad duration '%s' (expected e.g. 90s, 30m, 2h)",
				     v->value);
	return 0;
}

int config_get_size(const struct config_section *sec, const char *key, uint64_t def,
		    uint64_t *out, char *err, size_t errlen)
{
	const struct config_value *v = config_value(sec, key);

	*out = def;
	if (!v || !*v->value)
		return 0;
	if (config_parse_size(v->value, out))
		return config_errorf(err, errlen, v, "bad size '%s' (expected e.g. 512M, 2G)",
				     v->value);
	return 0;
}

int config_get_bool(const struct config_section *sec, const char *key, int def, int *out,
		    char *err, size_t errlen)
{
	const struct config_value *v = config_value(sec, key);

	*out = def;
	if (!v || !*v->value)
		return 0;
	if (config_parse_bool(v->value, out))
		return config_errorf(err, errlen, v, "bad boolean '%s' (expected yes or no)",
				     v->value);
	return 0;
}

int config_get_long(const struct config_section *sec, const char *key, long def, long min,
		    long max, long *out, char *err, size_t errlen)
{
	const struct config_value *v = config_value(sec, key);
	char *end;
	long n;

	*out = def;
	if (!v || !*v->value)
		return 0;
	errno = 0;
	n = strtol(v->value, &end, 10);
	if (errno || *end || end == v->value || n < min || n > max)
		return config_errorf(err, errlen, v, "bad number '%s' (expected %ld to %ld)",
				     v->value, min, max);
	*out = n;
	return 0;
}

char *config_expand_home(const char *path)
{
	const char *home = getenv("HOME");
	char *s;

	if (!path)
		return NULL;
	if (home && path[0] == '~' && (path[1] == '/' || path[1] == 0)) {
		if (asprintf(&s, "%s%s", home, path + 1) < 0)
			return NULL;
		return s;
	}
	return strdup(path);
}
