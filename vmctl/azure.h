/*
 * vmctl/azure.h: the Azure provider's extra operations and its JSON handling.
 *
 * The provider itself is vm_provider_azure (provider.h). The functions below
 * serve vmctl's Azure-only commands, and the azure_parse_* functions are the
 * pure response handlers (no network), exposed for the unit tests: every one
 * accepts any bytes and answers 0 or VM_EPARSE (or the ARM error it found)
 * with a message, never crashing. No cJSON type leaves azure.c.
 */
#ifndef WAKEFS_AZURE_H
#define WAKEFS_AZURE_H

#include <stddef.h>
#include <time.h>

#include "provider.h"

/* ---- pure response handlers ---- */

/* ARM error body {"error":{"code","message"}} (or AAD's error/error_description). 0 if found. */
int azure_parse_error(const char *body, char *code, size_t codelen, char *msg, size_t msglen);

/* Instance view -> power state (and since, from the status time when present). */
int azure_parse_power(const char *body, struct vm_status *st, struct vm_error *err);

/* VM -> its primary NIC id (and location, may be NULL). */
int azure_parse_vm_nic(const char *body, char *nic_id, size_t len, char *location,
		       size_t loclen, struct vm_error *err);

/* NIC -> the public IP resource id of its primary IP configuration. */
int azure_parse_nic_pip(const char *body, char *pip_id, size_t len, struct vm_error *err);

/* Public IP resource -> its address. */
int azure_parse_pip_address(const char *body, char *ip, size_t len, struct vm_error *err);

/* Azure-AsyncOperation body -> 1 done ok, 0 in progress, or the failure as an error. */
int azure_parse_async_status(const char *body, struct vm_error *err);

enum azure_token_kind {
	AZURE_TOKEN_AAD,	/* {"access_token","expires_in":3599} */
	AZURE_TOKEN_CLI,	/* {"accessToken","expires_on":1700000000 | "expiresOn":"..."} */
	AZURE_TOKEN_IMDS,	/* {"access_token","expires_on":"1700000000"} */
};
/* A token response -> a new token string (caller frees, wipe first) and its expiry. */
int azure_parse_token(const char *body, enum azure_token_kind kind, char **token,
		      time_t *expires, struct vm_error *err);

/* A VM list page: calls @cb for each VM name; *next gets nextLink (caller frees) or NULL. */
int azure_parse_vm_list(const char *body, void (*cb)(const char *name, void *payload),
			void *payload, char **next, struct vm_error *err);

/* Marketplace agreement: the same document with properties.accepted = true (caller frees). */
int azure_terms_accepted(const char *body, char **out, int *already, struct vm_error *err);

/* ---- commands beyond the provider interface ---- */

struct azure_vm_info {
	char name[128];
	enum vm_power power;
};

/* The VMs of the profile's resource group with their power state (caller frees *out). */
int azure_list(struct vm *vm, struct azure_vm_info **out, size_t *n, struct vm_error *err);

/* Deploy scripts/azure-vm.json for the profile; write .vm-id/.vm-ip into @dir. */
int azure_create(struct vm *vm, const char *dir, struct vm_error *err);

/* Delete the profile's resource group (the caller confirmed). */
int azure_delete(struct vm *vm, struct vm_error *err);

/* Accept the marketplace terms of the profile's image; *already set if they were. */
int azure_accept_terms(struct vm *vm, int *already, struct vm_error *err);

/* Daily auto-shutdown at @hhmm ("1900") in @tz ("UTC"), or remove it when @hhmm is NULL. */
int azure_autoshutdown(struct vm *vm, const char *hhmm, const char *tz, struct vm_error *err);

/* The full ARM id of the profile's VM. */
const char *azure_vm_id(struct vm *vm);

#endif
