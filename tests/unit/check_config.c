/*
 * tests/unit/check_config.c: the shared INI configuration (vmctl/config.c):
 * sections and values with their lines, repeatable keys, every grammar error
 * reported as FILE:LINE with what was expected, duration/size/bool parsers,
 * command-line overrides, the default path.
 */
#include "config.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char sample[] =
	"# a comment\n"
	"; another\n"
	"[aind]\n"
	"provider = azure\n"
	"subscription=00000000-0000-0000-0000-000000000001\n"
	"  vm =  dsvm  \n"
	"forward = 8888\n"
	"forward = 6006:localhost:6006\n"
	"idle_deallocate = 30m\n"
	"remote_dir = \"~/work/my project\"\n"
	"\n"
	"[demo]\r\n"
	"provider = local\r\n";

START_TEST(test_sections_and_values)
{
	struct config *cfg;
	const struct config_section *s;
	const struct config_value *v;
	char err[512];

	ck_assert_int_eq(config_parse(&cfg, "/etc/x", sample, err, sizeof(err)), 0);
	ck_assert_uint_eq(config_section_count(cfg), 2);
	ck_assert_str_eq(config_section_name(config_section_at(cfg, 1)), "demo");
	s = config_section(cfg, "aind");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(config_get(s, "provider"), "azure");
	ck_assert_str_eq(config_get(s, "vm"), "dsvm");
	ck_assert_str_eq(config_get(s, "remote_dir"), "~/work/my project");
	ck_assert_ptr_null(config_get(s, "user"));
	v = config_value(s, "vm");
	ck_assert_int_eq(v->line, 6);
	ck_assert_str_eq(v->file, "/etc/x");
	ck_assert_str_eq(config_get(config_section(cfg, "demo"), "provider"), "local");
	ck_assert_ptr_null(config_section(cfg, "nope"));
	ck_assert_ptr_null(config_get(NULL, "vm"));
	config_free(cfg);
}
END_TEST

START_TEST(test_repeatable)
{
	struct config *cfg;
	const struct config_section *s;
	const struct config_value *v;
	char err[512];

	ck_assert_int_eq(config_parse(&cfg, "f", sample, err, sizeof(err)), 0);
	s = config_section(cfg, "aind");
	ck_assert_uint_eq(config_count(s, "forward"), 2);
	v = config_next(s, "forward", NULL);
	ck_assert_str_eq(v->value, "8888");
	ck_assert_int_eq(v->line, 7);
	v = config_next(s, "forward", v);
	ck_assert_str_eq(v->value, "6006:localhost:6006");
	ck_assert_ptr_null(config_next(s, "forward", v));
	ck_assert(config_key_repeatable("forward"));
	ck_assert(!config_key_repeatable("vm"));
	config_free(cfg);
}
END_TEST

/* Parse @text expecting failure with exactly @expected as the message. */
static void expect_error(const char *text, const char *expected)
{
	struct config *cfg = (struct config *)1;
	char err[512] = "";

	ck_assert_int_eq(config_parse(&cfg, "/cfg", text, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err, expected);
}

START_TEST(test_errors_name_file_and_line)
{
	expect_error("[a]\nprovider = azur\n",
		     "config /cfg:2: unknown provider 'azur' (expected azure, local, none, command)");
	expect_error("[a]\n\nhots = x\n", "config /cfg:3: unknown key 'hots' in [a]");
	expect_error("vm = x\n", "config /cfg:1: 'vm' outside a [profile] section");
	expect_error("[a]\nvm = x\nvm = y\n", "config /cfg:3: 'vm' set twice in [a] (first on line 2)");
	expect_error("[a]\n[a]\n", "config /cfg:2: profile [a] defined twice (first on line 1)");
	expect_error("[a\n", "config /cfg:1: bad section header '[a' (expected [name])");
	expect_error("[a b]\n", "config /cfg:1: bad profile name 'a b' (expected letters, digits, '.', '_', '-')");
	expect_error("[a]\njust words\n", "config /cfg:2: expected 'key = value' or '[profile]', got 'just words'");
	expect_error("[a]\n= x\n", "config /cfg:2: missing key before '='");
	expect_error("[a]\nport = 70000\n", "config /cfg:2: bad port '70000' (expected a number from 1 to 65535)");
	expect_error("[a]\nflush = some\n", "config /cfg:2: unknown flush policy 'some' (expected tracked, unignored, all)");
	expect_error("[a]\nidle_deallocate = soon\n", "config /cfg:2: bad duration 'soon' (expected e.g. 90s, 30m, 2h)");
	expect_error("[a]\nkeep_vm = maybe\n", "config /cfg:2: bad boolean 'maybe' (expected yes or no)");
	expect_error("[a]\nforward = x:y\n", "config /cfg:2: bad forward 'x:y' (expected PORT or LOCALPORT:HOST:REMOTEPORT)");
	expect_error("[a]\narm_endpoint = ftp://x\n", "config /cfg:2: bad URL 'ftp://x' (expected https://HOST[/...])");
	expect_error("[a]\nautoshutdown_time = 2500\n", "config /cfg:2: bad time '2500' (expected HHMM or HH:MM, 24-hour)");
	expect_error("[a]\ncloud = Mars\n", "config /cfg:2: unknown cloud 'Mars' (expected AzureCloud, AzureChinaCloud, "
		     "AzureUSGovernment, or set arm_endpoint and authority_host)");
	expect_error("[a]\nwatchdog_minutes = -1\n", "config /cfg:2: bad number '-1' (expected a whole number of minutes)");
}
END_TEST

START_TEST(test_home_abbreviated)
{
	struct config *cfg;
	char err[512], file[512];
	const char *home = getenv("HOME");

	ck_assert_ptr_nonnull(home);
	snprintf(file, sizeof(file), "%s/.config/wakefs/config", home);
	ck_assert_int_eq(config_parse(&cfg, file, "[a]\n\nprovider = nope\n", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "config ~/.config/wakefs/config:3: unknown provider 'nope' "
			 "(expected azure, local, none, command)");
}
END_TEST

START_TEST(test_durations)
{
	long s;

	ck_assert_int_eq(config_parse_duration("90", &s), 0);
	ck_assert_int_eq(s, 90);
	ck_assert_int_eq(config_parse_duration("90s", &s), 0);
	ck_assert_int_eq(s, 90);
	ck_assert_int_eq(config_parse_duration("30m", &s), 0);
	ck_assert_int_eq(s, 1800);
	ck_assert_int_eq(config_parse_duration("2h", &s), 0);
	ck_assert_int_eq(s, 7200);
	ck_assert_int_eq(config_parse_duration("1h30m", &s), 0);
	ck_assert_int_eq(s, 5400);
	ck_assert_int_eq(config_parse_duration("1d", &s), 0);
	ck_assert_int_eq(s, 86400);
	ck_assert_int_eq(config_parse_duration("0", &s), 0);
	ck_assert_int_eq(s, 0);
	ck_assert_int_eq(config_parse_duration("", &s), -EINVAL);
	ck_assert_int_eq(config_parse_duration("m", &s), -EINVAL);
	ck_assert_int_eq(config_parse_duration("5x", &s), -EINVAL);
	ck_assert_int_eq(config_parse_duration("-5s", &s), -EINVAL);
	ck_assert_int_eq(config_parse_duration("1h30", &s), -EINVAL);
	ck_assert_int_eq(config_parse_duration("99999999999999999999s", &s), -EINVAL);
	ck_assert_int_eq(config_parse_duration("999999999999999d", &s), -EINVAL);
}
END_TEST

START_TEST(test_sizes_and_bools)
{
	uint64_t b;
	int v;

	ck_assert_int_eq(config_parse_size("4096", &b), 0);
	ck_assert_uint_eq(b, 4096);
	ck_assert_int_eq(config_parse_size("64k", &b), 0);
	ck_assert_uint_eq(b, 65536);
	ck_assert_int_eq(config_parse_size("512M", &b), 0);
	ck_assert_uint_eq(b, 512ULL << 20);
	ck_assert_int_eq(config_parse_size("2GiB", &b), 0);
	ck_assert_uint_eq(b, 2ULL << 30);
	ck_assert_int_eq(config_parse_size("1T", &b), 0);
	ck_assert_uint_eq(b, 1ULL << 40);
	ck_assert_int_eq(config_parse_size("12B", &b), 0);
	ck_assert_uint_eq(b, 12);
	ck_assert_int_eq(config_parse_size("1Q", &b), -EINVAL);
	ck_assert_int_eq(config_parse_size("G", &b), -EINVAL);
	ck_assert_int_eq(config_parse_size("99999999999T", &b), -EINVAL);
	ck_assert_int_eq(config_parse_bool("yes", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(config_parse_bool("Off", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(config_parse_bool("maybe", &v), -EINVAL);
}
END_TEST

START_TEST(test_typed_getters)
{
	struct config *cfg;
	const struct config_section *s;
	char err[512];
	long d, n;
	int b;

	ck_assert_int_eq(config_parse(&cfg, "/c", "[a]\nidle_deallocate = 2h\nkeep_vm = yes\n"
				      "watchdog_minutes = 45\n", err, sizeof(err)), 0);
	s = config_section(cfg, "a");
	ck_assert_int_eq(config_get_duration(s, "idle_deallocate", 5, &d, err, sizeof(err)), 0);
	ck_assert_int_eq(d, 7200);
	ck_assert_int_eq(config_get_duration(s, "command_timeout", 300, &d, err, sizeof(err)), 0);
	ck_assert_int_eq(d, 300);
	ck_assert_int_eq(config_get_bool(s, "keep_vm", 0, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(config_get_long(s, "watchdog_minutes", 0, 0, 30, &n, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "config /c:4: bad number '45' (expected 0 to 30)");
	config_free(cfg);
}
END_TEST

START_TEST(test_overrides)
{
	struct config *cfg;
	char err[512];
	const struct config_value *v;

	ck_assert_int_eq(config_parse(&cfg, "/c", "[a]\nvm = one\nforward = 1\n", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(cfg, "a", "vm", "two", err, sizeof(err)), 0);
	ck_assert_str_eq(config_get(config_section(cfg, "a"), "vm"), "two");
	v = config_value(config_section(cfg, "a"), "vm");
	config_value_where(v, err, sizeof(err));
	ck_assert_str_eq(err, "option 'vm'");
	ck_assert_int_eq(config_set(cfg, "a", "forward", "2", err, sizeof(err)), 0);
	ck_assert_uint_eq(config_count(config_section(cfg, "a"), "forward"), 2);
	ck_assert_int_eq(config_set(cfg, "new", "provider", "none", err, sizeof(err)), 0);
	ck_assert_str_eq(config_get(config_section(cfg, "new"), "provider"), "none");
	ck_assert_int_eq(config_set(cfg, "a", "provider", "bogus", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "option 'provider': unknown provider 'bogus' (expected azure, local, none, command)");
	ck_assert_int_eq(config_set(cfg, "a", "nokey", "1", err, sizeof(err)), -EINVAL);
	config_free(cfg);
}
END_TEST

START_TEST(test_load_files)
{
	char dir[] = "/tmp/check_config.XXXXXX", path[512], err[512], *old;
	struct config *cfg;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	ck_assert_int_eq(config_load(&cfg, path, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "cannot read config"));
	f = fopen(path, "w");
	fputs("\xEF\xBB\xBF[x]\nprovider = none\nhost = h\n", f);
	fclose(f);
	ck_assert_int_eq(config_load(&cfg, path, err, sizeof(err)), 0);
	ck_assert_str_eq(config_get(config_section(cfg, "x"), "host"), "h");
	ck_assert_str_eq(config_file(cfg), path);
	config_free(cfg);

	/* WAKEFS_CONFIG names the default; a missing default file is an empty config */
	old = getenv("WAKEFS_CONFIG") ? strdup(getenv("WAKEFS_CONFIG")) : NULL;
	setenv("WAKEFS_CONFIG", path, 1);
	ck_assert_int_eq(config_load(&cfg, NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(config_section_count(cfg), 1);
	config_free(cfg);
	unsetenv("WAKEFS_CONFIG");
	setenv("XDG_CONFIG_HOME", dir, 1);
	ck_assert_int_eq(config_default_path(err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/wakefs/config", dir);
	ck_assert_str_eq(err, path);
	ck_assert_int_eq(config_load(&cfg, NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(config_section_count(cfg), 0);
	config_free(cfg);
	if (old) {
		setenv("WAKEFS_CONFIG", old, 1);
		free(old);
	}
	snprintf(path, sizeof(path), "%s/config", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_expand_home)
{
	char *s;

	setenv("HOME", "/home/u", 1);
	s = config_expand_home("~/x/y");
	ck_assert_str_eq(s, "/home/u/x/y");
	free(s);
	s = config_expand_home("~other/x");
	ck_assert_str_eq(s, "~other/x");
	free(s);
	s = config_expand_home("/abs");
	ck_assert_str_eq(s, "/abs");
	free(s);
}
END_TEST

START_TEST(test_hostile_input)
{
	struct config *cfg;
	char err[64];	/* a small buffer truncates, never overflows */
	char *big = malloc(200001);

	memset(big, '[', 200000);
	big[200000] = 0;
	ck_assert_int_eq(config_parse(&cfg, "/c", big, err, sizeof(err)), -EINVAL);
	ck_assert_uint_lt(strlen(err), sizeof(err));
	memset(big, 'a', 200000);
	memcpy(big, "[a]\nvm = ", 9);
	ck_assert_int_eq(config_parse(&cfg, "/c", big, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(config_get(config_section(cfg, "a"), "vm")), 200000 - 9);
	config_free(cfg);
	ck_assert_int_eq(config_parse(&cfg, "/c", "", err, sizeof(err)), 0);
	ck_assert_uint_eq(config_section_count(cfg), 0);
	config_free(cfg);
	free(big);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

#define CASE(fn)                                \
	tc = tcase_create(#fn);                 \
	tcase_add_test(tc, fn);                 \
	suite_add_tcase(s, tc)
	CASE(test_sections_and_values);
	CASE(test_repeatable);
	CASE(test_errors_name_file_and_line);
	CASE(test_home_abbreviated);
	CASE(test_durations);
	CASE(test_sizes_and_bools);
	CASE(test_typed_getters);
	CASE(test_overrides);
	CASE(test_load_files);
	CASE(test_expand_home);
	CASE(test_hostile_input);
#undef CASE
	return s;
}

TAP_MAIN(config_suite)
