/* From the settings every password-checking module shares
 * (include/postern/auth_settings.h) to the library's own. */
#include <postern/auth_settings.h>

static unsigned clamp_uint(uint64_t value)
{
	return value > 0xffffffffu ? 0xffffffffu : (unsigned)value;
}

/* Whole seconds, rounded up: a window is never shorter than configured. */
static unsigned ms_to_secs(uint64_t ms)
{
	return clamp_uint(ms / 1000u + (ms % 1000u != 0));
}

int postern_auth_config_check(const struct postern_auth_config *config, const char **error_r)
{
	if (config->failure_delay_max < config->failure_delay) {
		*error_r = "auth_failure_delay_max is below auth_failure_delay";
		return -1;
	}
	return 0;
}

void postern_auth_config_passwd_file(const struct postern_auth_config *config,
				     struct postern_passwd_file_settings *set)
{
	set->path = config->passwd_file;
	set->check_interval_ms = clamp_uint(config->passwd_file_check_interval);
	set->max_line = (size_t)config->passwd_file_max_line;
	set->allow_plain = config->allow_plain_passwords;
}

void postern_auth_config_failures(const struct postern_auth_config *config,
				  struct postern_auth_failures_settings *set)
{
	set->max_entries = clamp_uint(config->failure_max_ips);
	set->window_secs = ms_to_secs(config->failure_window);
	set->block_after = clamp_uint(config->failure_block_after);
	set->block_secs = ms_to_secs(config->block_time);
	set->delay_initial_ms = clamp_uint(config->failure_delay);
	set->delay_max_ms = clamp_uint(config->failure_delay_max);
	set->ipv6_prefix = clamp_uint(config->ipv6_prefix);
}

void postern_auth_config_pool(const struct postern_auth_config *config,
			      struct postern_auth_pool_settings *set)
{
	set->threads = clamp_uint(config->threads);
	set->max_pending = clamp_uint(config->max_pending);
}
