/*
 * vmctl/config.h: the INI configuration shared by wakefs and vmctl.
 *
 * One file (default ~/.config/wakefs/config; $WAKEFS_CONFIG or --config FILE
 * override) holds one [section] per profile of `key = value` lines; `#` and `;`
 * start comments; keys such as `forward` may repeat. Every value remembers the
 * FILE:LINE it came from, so any module can report a bad value as
 *   config ~/.config/wakefs/config:12: unknown provider 'azur' (expected azure, local, none, command)
 * Unknown keys and malformed values of known keys are rejected at load time.
 *
 * Ownership: config_load()/config_new() make the caller the owner of the
 * struct config; every pointer obtained from it (sections, values, strings) is
 * borrowed and valid until config_free(). Functions return 0 or a negative
 * errno (-ENOENT missing file, -EINVAL bad syntax or value, -ENOMEM); on error
 * a one-line, user-facing message (no program prefix, no newline) is written
 * to @err when @err is not NULL.
 */
#ifndef WAKEFS_CONFIG_H
#define WAKEFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct config;		/* a loaded file: ordered sections */
struct config_section;	/* one [profile] */

/* One `key = value` line. Values given with config_set() have line 0. */
struct config_value {
	const char *key;
	const char *value;
	const char *file;	/* as given (for messages use config_value_where) */
	int line;		/* 1-based; 0 = set by the program (command line) */
};

/*
 * Resolve the default path: $WAKEFS_CONFIG, else $XDG_CONFIG_HOME/wakefs/config,
 * else $HOME/.config/wakefs/config. Writes it to @buf. Returns 0 or -ENAMETOOLONG.
 */
int config_default_path(char *buf, size_t len);

/*
 * Load @path (NULL = config_default_path; a missing DEFAULT file loads as an
 * empty configuration, a missing explicit file is -ENOENT). Sections and keys
 * are validated: unknown keys, repeated non-repeatable keys and bad values
 * (provider, flush, port, durations, booleans) fail with FILE:LINE.
 */
int config_load(struct config **out, const char *path, char *err, size_t errlen);

/* Parse a whole configuration from memory; @name is used in messages. */
int config_parse(struct config **out, const char *name, const char *text,
		 char *err, size_t errlen);

/* An empty configuration (for command-line-only use and tests). */
int config_new(struct config **out);

void config_free(struct config *cfg);

/* The file it was loaded from (as given; NULL for config_new()). */
const char *config_file(const struct config *cfg);

/* Sections, in file order. */
size_t config_section_count(const struct config *cfg);
const struct config_section *config_section_at(const struct config *cfg, size_t i);
const struct config_section *config_section(const struct config *cfg, const char *name);
const char *config_section_name(const struct config_section *sec);

/*
 * Set @key in section @section (created if missing), validated as at load
 * time; a command-line override. For a repeatable key the value is appended,
 * otherwise it replaces the file's value.
 */
int config_set(struct config *cfg, const char *section, const char *key,
	       const char *value, char *err, size_t errlen);

/* The (last) value of @key, or NULL when not set. @sec may be NULL. */
const char *config_get(const struct config_section *sec, const char *key);
const struct config_value *config_value(const struct config_section *sec, const char *key);

/*
 * All values of @key in order: call with @prev NULL for the first, then with
 * the previous result; NULL at the end. For repeatable keys like `forward`.
 */
const struct config_value *config_next(const struct config_section *sec, const char *key,
				       const struct config_value *prev);

/* Number of values of @key in @sec. */
size_t config_count(const struct config_section *sec, const char *key);

/*
 * Where @v came from, for messages: "config ~/.config/wakefs/config:12"
 * ($HOME abbreviated to ~), or "option 'key'" for config_set() values.
 */
void config_value_where(const struct config_value *v, char *buf, size_t len);

/*
 * Format a message about @v into @err: "<where>: <printf message>".
 * Returns -EINVAL so callers can `return config_errorf(...)`.
 */
int config_errorf(char *err, size_t errlen, const struct config_value *v,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Is @key a known profile key? Is it repeatable? */
int config_key_known(const char *key);
int config_key_repeatable(const char *key);

/*
 * Value parsers (no config needed). Return 0 or -EINVAL.
 * duration: "90" (seconds), "90s", "30m", "2h", "1d", "1h30m"; "0" allowed.
 * size: "4096", "64k", "512M", "2G", "1T" (powers of 1024, optional "iB"/"B").
 * bool: yes/no, true/false, on/off, 1/0.
 */
int config_parse_duration(const char *s, long *seconds);
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_bool(const char *s, int *out);

/*
 * Typed getters with a default when unset; a bad value yields -EINVAL and a
 * FILE:LINE message in @err.
 */
int config_get_duration(const struct config_section *sec, const char *key, long def,
			long *out, char *err, size_t errlen);
int config_get_size(const struct config_section *sec, const char *key, uint64_t def,
		    uint64_t *out, char *err, size_t errlen);
int config_get_bool(const struct config_section *sec, const char *key, int def,
		    int *out, char *err, size_t errlen);
int config_get_long(const struct config_section *sec, const char *key, long def,
		    long min, long max, long *out, char *err, size_t errlen);

/*
 * Expand a leading "~/" (or "~") to $HOME into a new string (caller frees);
 * other strings are duplicated. NULL on allocation failure.
 */
char *config_expand_home(const char *path);

#endif
